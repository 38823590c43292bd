package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/webhook"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hub.toml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckConfig: --check-config accepts a good file and refuses a bad
// one with exit code 2, the file, the line and why, in one line.
func TestCheckConfig(t *testing.T) {
	secret := strings.Repeat("k", 32)
	for _, tc := range []struct {
		name, file string
		code       int
		want       string
	}{
		{"good", "[serve]\njwt-key = \"" + secret + "\"\nhistory-size = 10\n\n[[issuer]]\nid = \"https://auth.example\"\nkeys = [\"" + secret + "\"]\n", 0, "config ok"},
		{"unknown flag", "[serve]\njwt-key = \"" + secret + "\"\nhistory-sise = 10\n", 2, ":3: serve.history-sise: no such serve flag"},
		{"bad value", "[serve]\n\nhistory-size = \"many\"\n", 2, ":3: serve.history-size: parse error"},
		{"bad duration", "[serve]\nheartbeat = \"often\"\n", 2, ":2: serve.heartbeat"},
		{"config in config", "[serve]\nconfig = \"other.toml\"\n", 2, ":2: serve.config: only a flag or SSEKIT_CONFIG"},
		{"bad issuer key", "[[issuer]]\nid = \"https://a\"\nkeys = [\"short\"]\n", 2, ":3: issuer[0].keys"},
		{"unknown section", "[webhooks]\nurl = \"http://a\"\n", 2, ":1: webhooks: unknown key"},
		{"bad policy pattern", "[serve]\njwt-key = \"" + secret + "\"\n[[policy]]\nmatch = \"/relative/*\"\ntype = \"urlpattern\"\nanonymous = false\n", 2, ":4: policy[0].match"},
		{"bad webhook topic", "[serve]\njwt-key = \"" + secret + "\"\n[[webhook]]\nname = \"a\"\nurl = \"http://a\"\nsecrets = [\"" + secret + "\"]\ntopics = [\"" + strings.Repeat("{a}", 200) + "\"]\n", 2, ":7: webhook[0].topics"},
		{"short webhook secret", "[serve]\njwt-key = \"" + secret + "\"\n[[webhook]]\nname = \"a\"\nurl = \"http://a\"\nsecrets = [\"short\"]\n", 2, ":6: webhook[0].secrets: a secret needs 16 bytes"},
		{"good policy", "[serve]\njwt-key = \"" + secret + "\"\n[[policy]]\nmatch = \"https://example.com/vip/*\"\ntype = \"urlpattern\"\nanonymous = false\n", 0, "config ok"},
		{"syntax", "[serve]\nhistory-size = = 3\n", 2, "hub.toml:2:"},
		{"flag value refused later", "[serve]\naddr = \"0.0.0.0:1\"\n", 2, "refusing to listen on 0.0.0.0:1 without a key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, _ := testMain()
			m.Getenv = func(string) string { return "" }
			p := writeConfig(t, tc.file)
			r := run(t, m, "serve", "--data-dir", t.TempDir(), "--config", p, "--check-config")
			out := r.stdout + r.stderr
			if r.code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, output %q; want exit %d with %q", r.code, out, tc.code, tc.want)
			}
			if tc.code != 0 && strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Errorf("error spans lines: %q", r.stderr)
			}
		})
	}
	m, _, _ := testMain()
	if r := run(t, m, "serve", "--config", filepath.Join(t.TempDir(), "none.toml"), "--check-config"); r.code != 2 || !strings.Contains(r.stderr, "none.toml") {
		t.Errorf("missing file: exit %d, %q", r.code, r.stderr)
	}
}

// TestConfigPrecedence: a flag on the command line wins over its variable,
// which wins over the file, which wins over the default.
func TestConfigPrecedence(t *testing.T) {
	p := writeConfig(t, "[serve]\nhistory-size = 1\nheartbeat = \"1m\"\nwriters = 3\nqueue-size = 7\n")
	m, _, _ := testMain()
	env := map[string]string{"SSEKIT_HISTORY_SIZE": "2", "SSEKIT_HEARTBEAT": "2m"}
	m.Getenv = func(k string) string { return env[k] }
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := m.serveFlags(fs)
	if err := fs.Parse([]string{"--config", p, "--history-size", "3"}); err != nil {
		t.Fatal(err)
	}
	set, err := m.applyEnv(fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.applyConfigFile(fs, set, cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.historySize != 3 || cfg.heartbeat != 2*time.Minute || cfg.writers != 3 || cfg.queueSize != 7 || cfg.maxTops != 100 {
		t.Errorf("history-size %d (flag 3), heartbeat %v (env 2m), writers %d (file 3), queue-size %d (file 7), max-topics %d (default 100)",
			cfg.historySize, cfg.heartbeat, cfg.writers, cfg.queueSize, cfg.maxTops)
	}
	if !set["writers"] || set["max-topics"] {
		t.Errorf("set = %v: the file's keys count as set, defaults do not", set)
	}
}

// TestServeConfigFile: a hub started with --config serves what the file
// says, over real HTTP, and SSEKIT_* variables still win.
func TestServeConfigFile(t *testing.T) {
	fileKey, envKey := strings.Repeat("f", 32), strings.Repeat("e", 32)
	addr := e2etest.FreeAddr(t)
	p := writeConfig(t, "[serve]\naddr = \""+addr+"\"\njwt-key = \""+fileKey+"\"\nstore = \"memory\"\nallow-anonymous = false\n")
	m, _, stderr := testMain()
	m.Getenv = func(k string) string {
		if k == "SSEKIT_JWT_KEY" {
			return envKey
		}
		return ""
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, []string{"serve", "--config", p, "--data-dir", t.TempDir()}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	c := e2etest.NewClient(t)
	base := "http://" + addr
	poll.Until(t, "the hub listens on the file's address", 10*time.Second, func() bool {
		return e2etest.Status(c, base+"/healthz") == http.StatusOK
	})
	if got := publishStatus(t, c, base, e2etest.Token(t, envKey, hub.Claims{Publish: []string{"*"}})); got != http.StatusOK {
		t.Errorf("publish with the environment's key: %d; want 200\n%s", got, stderr)
	}
	if got := publishStatus(t, c, base, e2etest.Token(t, fileKey, hub.Claims{Publish: []string{"*"}})); got != http.StatusUnauthorized {
		t.Errorf("publish with the file's key, overridden: %d; want 401", got)
	}
	if got := e2etest.Status(c, base+"/.well-known/mercure?topic=a"); got != http.StatusUnauthorized {
		t.Errorf("anonymous subscribe with allow-anonymous = false in the file: %d; want 401", got)
	}
}

func publishStatus(t *testing.T, c *http.Client, base, tok string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/.well-known/mercure", strings.NewReader("topic=a&data=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeAuthHook: [auth-hook] in the file puts the application in
// the loop of a served hub: its answer decides, and its metrics are on
// /metrics.
func TestServeAuthHook(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Cookies map[string]string `json:"cookies"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		fmt.Fprintf(w, `{"allow": %v, "reason": "no session"}`, req.Cookies["session"] == "ok")
	}))
	defer app.Close()
	addr := e2etest.FreeAddr(t)
	p := writeConfig(t, "[serve]\naddr = \""+addr+"\"\nstore = \"memory\"\n\n[auth-hook]\nurl = \""+app.URL+"\"\n")
	m, _, _ := testMain()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, []string{"serve", "--config", p, "--data-dir", t.TempDir()}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	c := e2etest.NewClient(t)
	base := "http://" + addr
	poll.Until(t, "the hub listens", 10*time.Second, func() bool { return e2etest.Status(c, base+"/healthz") == http.StatusOK })
	if got := e2etest.Status(c, base+"/.well-known/mercure?topic=a"); got != http.StatusForbidden {
		t.Errorf("subscribe without a session: %d; want 403 (the development key's anonymous access does not bypass the hook)", got)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/mercure?topic=a", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: "ok"})
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("subscribe with a session: %d; want 200", resp.StatusCode)
	}
	metrics, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if !strings.Contains(string(b), `ssekit_auth_hook_requests_total{action="subscribe",outcome="granted"} 1`) {
		t.Errorf("/metrics lacks the hook's granted subscribe")
	}
	// check-config refuses a hook URL that is no URL, with its line.
	bad := writeConfig(t, "[auth-hook]\nurl = \"ftp://app\"\n")
	if r := run(t, nil, "serve", "--config", bad, "--check-config"); r.code != 2 || !strings.Contains(r.stderr, ":2: auth-hook.url") {
		t.Errorf("bad hook url: exit %d %q", r.code, r.stderr)
	}
}

// TestWebhooksCommand: list and replay on an outbox file, and the
// refusals.
func TestWebhooksCommand(t *testing.T) {
	dir := t.TempDir()
	if r := run(t, nil, "webhooks", "--data-dir", dir, "list"); r.code != 1 || !strings.Contains(r.stderr, "no webhook outbox") {
		t.Errorf("no outbox: exit %d %q", r.code, r.stderr)
	}
	o, err := webhook.Open(webhook.Config{Path: filepath.Join(dir, webhooksFile), Store: hub.NewMemoryStore(hub.MemoryStoreConfig{}),
		Endpoints: []webhook.Endpoint{{Name: "app", URL: "http://127.0.0.1:1/", Secrets: [][]byte{[]byte("0123456789abcdef")}}}})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	if r := run(t, nil, "webhooks", "--data-dir", dir, "list"); r.code != 0 || !strings.Contains(r.stdout, "app") {
		t.Errorf("list: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, nil, "webhooks", "--data-dir", dir, "replay", "app"); r.code != 0 || !strings.Contains(r.stdout, "0 dead letters of app") {
		t.Errorf("replay: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, nil, "webhooks", "--data-dir", dir, "replay", "nope"); r.code != 1 || !strings.Contains(r.stderr, "no such endpoint") {
		t.Errorf("replay of an unknown endpoint: exit %d %q", r.code, r.stderr)
	}
	if r := run(t, nil, "webhooks", "--data-dir", dir, "purge"); r.code != 2 {
		t.Errorf("unknown subcommand: exit %d", r.code)
	}
}

// TestServeWebhooks: a served hub with [[webhook]] tells the endpoint of
// a subscription starting and ending and of an update, signed.
func TestServeWebhooks(t *testing.T) {
	secret := strings.Repeat("w", 32)
	events := make(chan string, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header, body, 0, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev webhook.Event
		json.Unmarshal(body, &ev)
		events <- ev.Type
	}))
	defer recv.Close()
	addr := e2etest.FreeAddr(t)
	p := writeConfig(t, fmt.Sprintf("[serve]\naddr = %q\nstore = \"memory\"\njwt-key = %q\nallow-anonymous = true\n\n[[webhook]]\nname = \"app\"\nurl = %q\nsecrets = [%q]\nsubscriptions = true\n", addr, secret, recv.URL, secret))
	m, _, _ := testMain()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, []string{"serve", "--config", p, "--data-dir", t.TempDir()}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	c := e2etest.NewClient(t)
	base := "http://" + addr
	poll.Until(t, "the hub listens", 10*time.Second, func() bool { return e2etest.Status(c, base+"/healthz") == http.StatusOK })
	s := e2etest.OpenStream(t, c, base+"/.well-known/mercure", "topic=room", "", 10*time.Second)
	want := []string{webhook.EventSubscriptionStarted, webhook.EventSubscriptionEnded, webhook.EventUpdatePublished}
	next := func() string {
		select {
		case e := <-events:
			return e
		case <-time.After(10 * time.Second):
			return "nothing in 10s"
		}
	}
	if got := next(); got != want[0] {
		t.Fatalf("first event %q; want %q", got, want[0])
	}
	s.Close()
	if got := next(); got != want[1] {
		t.Fatalf("second event %q; want %q", got, want[1])
	}
	if got := publishStatus(t, c, base, e2etest.Token(t, secret, hub.Claims{Publish: []string{"*"}})); got != http.StatusOK {
		t.Fatalf("publish: %d", got)
	}
	if got := next(); got != want[2] {
		t.Errorf("third event %q; want %q", got, want[2])
	}
}

// TestServeLatestState: [[policy]] latest = N in the file makes a served
// hub's topic latest-state, from the history already there at start.
func TestServeLatestState(t *testing.T) {
	key := strings.Repeat("l", 32)
	addr := e2etest.FreeAddr(t)
	dataDir := t.TempDir()
	p := writeConfig(t, fmt.Sprintf("[serve]\naddr = %q\njwt-key = %q\nallow-anonymous = true\n\n[[policy]]\nmatch = \"ticker\"\nlatest = 2\n", addr, key))
	serve := func() (stop func()) {
		m, _, _ := testMain()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx, []string{"serve", "--config", p, "--data-dir", dataDir}) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	}
	c := e2etest.NewClient(t)
	base := "http://" + addr
	tok := e2etest.Token(t, key, hub.Claims{Publish: []string{"*"}})
	stop := serve()
	poll.Until(t, "the hub listens", 10*time.Second, func() bool { return e2etest.Status(c, base+"/healthz") == http.StatusOK })
	for _, id := range []string{"t1", "t2", "t3"} {
		if _, err := e2etest.Publish(t.Context(), c, base+"/.well-known/mercure", tok, url.Values{"topic": {"ticker"}, "id": {id}, "data": {id}}); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	c.CloseIdleConnections()
	stop = serve() // the index is built from the bolt history
	defer stop()
	poll.Until(t, "the hub listens again", 10*time.Second, func() bool { return e2etest.Status(c, base+"/healthz") == http.StatusOK })
	s := e2etest.OpenStream(t, c, base+"/.well-known/mercure", "topic=ticker", "", 10*time.Second)
	defer s.Close()
	var got []string
	for _, ev := range s.Until(t, "t3") {
		if ev.ID != "" {
			got = append(got, ev.ID)
		}
	}
	if strings.Join(got, ",") != "t2,t3" {
		t.Errorf("a new subscriber got %v; want the last 2, t2 and t3", got)
	}
}

// TestServePolicyRetention: [[policy]] keep = N in the file keeps only the
// last N of its topic in the history, other topics keep theirs.
func TestServePolicyRetention(t *testing.T) {
	key := strings.Repeat("r", 32)
	addr := e2etest.FreeAddr(t)
	p := writeConfig(t, fmt.Sprintf("[serve]\naddr = %q\njwt-key = %q\nallow-anonymous = true\n\n[[policy]]\nmatch = \"ticker\"\nkeep = 1\n", addr, key))
	m, _, _ := testMain()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, []string{"serve", "--config", p, "--data-dir", t.TempDir()}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	c := e2etest.NewClient(t)
	base := "http://" + addr
	tok := e2etest.Token(t, key, hub.Claims{Publish: []string{"*"}})
	poll.Until(t, "the hub listens", 10*time.Second, func() bool { return e2etest.Status(c, base+"/healthz") == http.StatusOK })
	for _, u := range [][2]string{{"t1", "ticker"}, {"o1", "other"}, {"t2", "ticker"}, {"t3", "ticker"}, {"o2", "other"}} {
		if _, err := e2etest.Publish(t.Context(), c, base+"/.well-known/mercure", tok, url.Values{"topic": {u[1]}, "id": {u[0]}, "data": {u[0]}}); err != nil {
			t.Fatal(err)
		}
	}
	s := e2etest.OpenStream(t, c, base+"/.well-known/mercure", "topic=*", "earliest", 10*time.Second)
	defer s.Close()
	var got []string
	for _, ev := range s.Until(t, "o2") {
		if ev.ID != "" {
			got = append(got, ev.ID)
		}
	}
	if strings.Join(got, ",") != "o1,t3,o2" {
		t.Errorf("the history replayed %v; want o1,t3,o2", got)
	}
}
