package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
)

func TestToken(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	devSecret, _, err := jwtauth.LoadOrCreateSecret(filepath.Join(dataDir, "dev-jwt-secret"))
	if err != nil {
		t.Fatal(err)
	}
	devKey, err := jwtauth.NewKey("HS256", devSecret)
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secretKey, err := jwtauth.NewKey("HS256", []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(dir, "ec.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ecKey, err := jwtauth.NewKey("ES256", &ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now().Truncate(time.Second)
	everything := hub.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}}
	tests := []struct {
		name   string
		args   []string
		env    []string
		verify *jwtauth.Key
		want   hub.Claims
	}{
		{"development key", []string{"--data-dir", dataDir}, nil, devKey, everything},
		{"development key from SSEKIT_DATA_DIR", nil, []string{"SSEKIT_DATA_DIR=" + dataDir}, devKey, everything},
		{"secret", []string{"--key", testSecret}, nil, secretKey, everything},
		{"secret file", []string{"--key", "@" + secretFile}, nil, secretKey, everything},
		{"key from SSEKIT_JWT_KEY", nil, []string{"SSEKIT_JWT_KEY=" + testSecret}, secretKey, everything},
		{"--key wins over SSEKIT_JWT_KEY", []string{"--key", testSecret}, []string{"SSEKIT_JWT_KEY=@/nonexistent"}, secretKey, everything},
		{"ES256 PEM", []string{"--key", "@" + pemFile, "--alg", "ES256"}, nil, ecKey, everything},
		{"ES256 inferred", []string{"--key", "@" + pemFile}, nil, ecKey, everything},
		{"publish only", []string{"--key", testSecret, "--publish", "https://example.com/books/{id}", "--publish", "demo"}, nil, secretKey,
			hub.Claims{Publish: []string{"https://example.com/books/{id}", "demo"}}},
		{"subscribe and payload", []string{"--key", testSecret, "--subscribe", "*", "--payload", `{"user":"alice"}`}, nil, secretKey,
			hub.Claims{Subscribe: []string{"*"}, Payload: json.RawMessage(`{"user":"alice"}`)}},
		{"ttl", []string{"--key", testSecret, "--publish", "demo", "--ttl", "1h"}, nil, secretKey,
			hub.Claims{Publish: []string{"demo"}, ExpiresAt: now.Add(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := testMain()
			m.Getenv = env(tt.env...)
			m.Now = func() time.Time { return now }
			got := run(t, m, append([]string{"token"}, tt.args...)...)
			if got.code != 0 || got.stderr != "" {
				t.Fatalf("exit code %d, stderr %q; want 0 and nothing", got.code, got.stderr)
			}
			token, ok := strings.CutSuffix(got.stdout, "\n")
			if !ok || strings.ContainsAny(token, " \n") {
				t.Fatalf("stdout %q; want one token and a newline", got.stdout)
			}
			auth, err := jwtauth.New(jwtauth.Config{PublisherKey: tt.verify})
			if err != nil {
				t.Fatal(err)
			}
			claims, err := auth.VerifyPublisher(token)
			if err != nil {
				t.Fatalf("the hub would refuse the token: %v", err)
			}
			if !claims.ExpiresAt.Equal(tt.want.ExpiresAt) {
				t.Errorf("expires at %v; want %v", claims.ExpiresAt, tt.want.ExpiresAt)
			}
			claims.ExpiresAt, tt.want.ExpiresAt = time.Time{}, time.Time{}
			claims.Identity = "" // a hash, checked in jwtauth
			if !reflect.DeepEqual(*claims, tt.want) {
				t.Errorf("claims %+v; want %+v", *claims, tt.want)
			}
		})
	}
}

func TestTokenRefused(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no development key", []string{"--data-dir", missing}, 1,
			"ssekit token: no --key and no development key at " + filepath.Join(missing, "dev-jwt-secret") + ": run 'ssekit serve --data-dir " + missing + "' once on a loopback address to create it, or pass --key SECRET (or --key @FILE)\n"},
		{"short secret", []string{"--key", "short"}, 1, "ssekit token: --key: jwtauth: HMAC secret too short"},
		{"unsupported alg", []string{"--key", testSecret, "--alg", "none"}, 1, "ssekit token: --key: jwtauth: unsupported algorithm"},
		{"bad payload", []string{"--key", testSecret, "--payload", "{"}, 2, "ssekit token: --payload is not valid JSON: \"{\"\n"},
		{"negative ttl", []string{"--key", testSecret, "--ttl", "-1h"}, 2, "ssekit token: --ttl must not be negative\n"},
		{"an argument", []string{"--key", testSecret, "extra"}, 2, "ssekit token: takes no arguments, got \"extra\" (see 'ssekit token --help')\n"},
		{"draft 08 without audience", []string{"--key", testSecret, "--issuer", "https://app.example"}, 2, "ssekit token: a draft-08 token needs --issuer and --audience"},
		{"draft 08 without issuer", []string{"--key", testSecret, "--draft", "08", "--audience", "https://hub.example/"}, 2, "ssekit token: a draft-08 token needs --issuer and --audience"},
		{"draft 07 with an issuer", []string{"--key", testSecret, "--draft", "07", "--issuer", "https://app.example"}, 2, "ssekit token: --issuer, --audience, --subject and the -urlpattern flags make draft-08 tokens"},
		{"unknown draft", []string{"--key", testSecret, "--draft", "09"}, 2, "ssekit token: --draft \"09\": use 08 or 07"},
		{"draft 08 payload not an object", []string{"--key", testSecret, "--issuer", "https://app.example", "--audience", "https://hub.example/", "--payload", "[]"}, 1, "ssekit token: jwtauth: detail 1: payload must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, nil, append([]string{"token"}, tt.args...)...)
			if got.code != tt.code || got.stdout != "" {
				t.Errorf("exit code %d, stdout %q; want %d and nothing", got.code, got.stdout, tt.code)
			}
			if !strings.HasPrefix(got.stderr, tt.stderr) || strings.Count(got.stderr, "\n") != 1 {
				t.Errorf("stderr %q; want one line starting with %q", got.stderr, tt.stderr)
			}
		})
	}
	// The development key is only read: a failed run does not create it.
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("ssekit token created %s (err %v); it must only read the development key", missing, err)
	}
}

func TestTokenHelp(t *testing.T) {
	got := run(t, nil, "token", "--help")
	for _, want := range []string{"Usage: ssekit token", "--key KEY", "[SSEKIT_JWT_KEY]", "--alg ALG", "[SSEKIT_JWT_ALG]", "--data-dir DIR", "[SSEKIT_DATA_DIR]", "--publish SELECTOR", "--subscribe SELECTOR", "--payload JSON", "--ttl DURATION"} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, got.stdout)
		}
	}
}

// TestTokenDraft08: with --issuer the token is an access token that a hub
// trusting that issuer accepts, with the matchers and payload asked for,
// expiring after --ttl (1h without it); the env twins of serve's --issuer
// and --resource are read too.
func TestTokenDraft08(t *testing.T) {
	const iss, aud = "https://app.example", "https://hub.example/.well-known/mercure"
	key, err := jwtauth.NewKey("HS256", []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := jwtauth.New(jwtauth.Config{Resource: aud, Issuers: []jwtauth.Issuer{{ID: iss, Keys: []*jwtauth.Key{key}}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		ttl     time.Duration
		details string
	}{
		{"everything", nil, []string{"--issuer", iss, "--audience", aud}, time.Hour,
			`[{"Publish":true,"Subscribe":false,"Topics":[{"Match":"*","Type":"exact"}],"Payload":null},{"Publish":false,"Subscribe":true,"Topics":[{"Match":"*","Type":"exact"}],"Payload":null}]`},
		{"patterns and payload", nil, []string{"--issuer", iss, "--audience", aud, "--ttl", "10m", "--publish", "https://app.example/a",
			"--subscribe-urlpattern", "https://app.example/books/:id", "--payload", `{"user":"alice"}`}, 10 * time.Minute,
			`[{"Publish":true,"Subscribe":false,"Topics":[{"Match":"https://app.example/a","Type":"exact"}],"Payload":null},{"Publish":false,"Subscribe":true,"Topics":[{"Match":"https://app.example/books/:id","Type":"urlpattern"}],"Payload":{"user":"alice"}}]`},
		{"from serve's environment", map[string]string{"SSEKIT_ISSUER": iss, "SSEKIT_RESOURCE": aud}, []string{"--publish-urlpattern", "/x/:y"}, time.Hour,
			`[{"Publish":true,"Subscribe":false,"Topics":[{"Match":"/x/:y","Type":"urlpattern"}],"Payload":null}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := testMain()
			m.Getenv = func(k string) string { return tt.env[k] }
			m.Now = func() time.Time { return now }
			got := run(t, m, append([]string{"token", "--key", testSecret}, tt.args...)...)
			if got.code != 0 || got.stderr != "" {
				t.Fatalf("exit code %d, stderr %q; want 0 and nothing", got.code, got.stderr)
			}
			c, err := auth.VerifySubscriber(strings.TrimSpace(got.stdout))
			if err != nil {
				t.Fatalf("a hub trusting %s refuses it: %v", iss, err)
			}
			if !c.AccessToken || !c.ExpiresAt.Equal(now.Add(tt.ttl)) {
				t.Errorf("AccessToken %v, exp %v; want true, %v", c.AccessToken, c.ExpiresAt, now.Add(tt.ttl))
			}
			if d, _ := json.Marshal(c.Details); string(d) != tt.details {
				t.Errorf("details %s; want %s", d, tt.details)
			}
		})
	}
}
