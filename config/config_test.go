package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/config"
)

const good = `# a hub
[serve]
addr = "0.0.0.0:8080"
history-size = 500
allow-anonymous = true
publish-rate = 2.5

[[issuer]]
id = "https://auth.example"
jwks = "discover"

[[issuer]]
id = "https://other.example"
keys = ["@/etc/ssekit/other.pem"]

[auth-hook]
url = "http://127.0.0.1:9000/auth"
timeout = "1500ms"
forward-cookies = ["session"]
private-topics = ["https://example.com/users/"]
`

func TestParse(t *testing.T) {
	f, err := config.Parse("hub.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.ServeKeys(); strings.Join(got, ",") != "addr,allow-anonymous,history-size,publish-rate" {
		t.Errorf("serve keys %v", got)
	}
	for k, want := range map[string]string{"addr": "0.0.0.0:8080", "history-size": "500", "allow-anonymous": "true"} {
		if got := f.Serve[k].Text; got != want {
			t.Errorf("serve.%s = %q; want %q", k, got, want)
		}
	}
	if len(f.Issuers) != 2 || f.Issuers[1].Keys[0] != "@/etc/ssekit/other.pem" || f.Issuers[0].JWKS != "discover" {
		t.Errorf("issuers %+v", f.Issuers)
	}
	if h := f.AuthHook; h == nil || h.Timeout.Duration != 1500*time.Millisecond || h.Subscribe != nil || h.PrivateTopics[0] != "https://example.com/users/" {
		t.Errorf("auth hook %+v", f.AuthHook)
	}
	if got := f.Line([]string{"issuer", "1", "keys"}); got != 14 {
		t.Errorf("line of issuer[1].keys = %d; want 14", got)
	}
}

// TestRefused: every invalid file is refused with its line and the reason.
func TestRefused(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"syntax", "[serve]\naddr = \"x\n", "hub.toml:2:"},
		{"unknown top key", "[serve]\naddr = \"x\"\n\n[webhok]\nurl = \"y\"\n", "hub.toml:4: webhok: unknown key"},
		{"unknown nested key", "[auth-hook]\nurl = \"http://a\"\ntimeot = \"1s\"\n", "hub.toml:3: auth-hook.timeot: unknown key"},
		{"unknown issuer key", "[[issuer]]\nid = \"a\"\njwks = \"discover\"\n[[issuer]]\nid = \"b\"\nkey = \"k\"\n", "hub.toml:6: issuer.key: unknown key"},
		{"bad duration", "[auth-hook]\nurl = \"http://a\"\n\ntimeout = \"soon\"\n", `hub.toml:4: auth-hook.timeout: "soon" is not a duration`},
		{"negative duration", "[auth-hook]\nurl = \"http://a\"\ntimeout = \"-1s\"\n", "hub.toml:3: auth-hook.timeout"},
		{"wrong type", "[auth-hook]\nurl = \"http://a\"\nconcurrency = \"many\"\n", "line 3"},
		{"array for a flag", "[serve]\naddr = [\"a\", \"b\"]\n", "line 2"},
		{"table for a flag", "[serve.addr]\nhost = \"a\"\n", "serve.addr"},
		{"issuer without id", "[[issuer]]\njwks = \"discover\"\n", "hub.toml:1: issuer[0].id: an issuer needs its id"},
		{"issuer twice", "[[issuer]]\nid = \"a\"\njwks = \"discover\"\n[[issuer]]\nid = \"a\"\njwks = \"discover\"\n", `hub.toml:5: issuer[1].id: issuer "a" appears twice`},
		{"issuer without keys", "[[issuer]]\nid = \"a\"\n", "issuer[0].id: issuer \"a\" has no keys"},
		{"hook without url", "[auth-hook]\ntimeout = \"1s\"\n", "hub.toml:1: auth-hook: url is required"},
		{"hook for nothing", "[auth-hook]\nurl = \"http://a\"\nsubscribe = false\n", "hub.toml:3: auth-hook.subscribe"},
		{"policy without match", "[[policy]]\nanonymous = false\n", "hub.toml:1: policy[0].match: a policy needs"},
		{"policy type", "[[policy]]\nmatch = \"a\"\ntype = \"regex\"\nanonymous = false\n", "hub.toml:3: policy[0].type"},
		{"policy restricting nothing", "[[policy]]\nmatch = \"a\"\n", "does nothing"},
		{"policy requiring no hook", "[[policy]]\nmatch = \"a\"\nrequire-hook = true\n", "hub.toml:3: policy[0].require-hook: there is no [auth-hook]"},
		{"policy unknown key", "[[policy]]\nmatch = \"a\"\nanonymous = false\nretention-count = 1\n", "hub.toml:4: policy.retention-count: unknown key"},
		{"policy negative keep", "[[policy]]\nmatch = \"a\"\nkeep = -1\n", "keep: -1"},
		{"policy huge keep", "[[policy]]\nmatch = \"a\"\nkeep = 1000001\n", "keep: 1000001"},
		{"policy negative max-age", "[[policy]]\nmatch = \"a\"\nmax-age = \"-1s\"\n", "hub.toml:3: policy.max-age: \"-1s\": a duration here cannot be negative"},
		{"policy latest beyond keep", "[[policy]]\nmatch = \"a\"\nkeep = 2\nlatest = 3\n", "latest = 3 but keep = 2"},
		{"webhook url", "[[webhook]]\nname = \"a\"\nurl = \"ftp://a\"\nsecrets = [\"s\"]\n", "hub.toml:3: webhook[0].url: \"ftp://a\": want http(s)"},
		{"webhook without secret", "[[webhook]]\nname = \"a\"\nurl = \"http://a\"\n", "webhook[0].secrets: a secret is required"},
		{"webhook twice", "[[webhook]]\nname = \"a\"\nurl = \"http://a\"\nsecrets = [\"s\"]\n[[webhook]]\nname = \"a\"\n", "hub.toml:6: webhook[1].name: webhook \"a\" appears twice"},
		{"negative", "[auth-hook]\nurl = \"http://a\"\ncache-entries = -1\n", "hub.toml:3: auth-hook.cache-entries: cannot be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("hub.toml", []byte(tc.file))
			if err == nil {
				t.Fatalf("accepted; want an error with %q", tc.want)
			}
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q; want ErrInvalid with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := config.Load(filepath.Join(dir, "missing.toml")); err == nil || errors.Is(err, config.ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", config.MaxFileBytes)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(big); !errors.Is(err, config.ErrInvalid) {
		t.Errorf("huge file: %v", err)
	}
	ok := filepath.Join(dir, "ok.toml")
	os.WriteFile(ok, []byte(good), 0o600)
	if _, err := config.Load(ok); err != nil {
		t.Error(err)
	}
}
