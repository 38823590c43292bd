package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/testenv"
)

// TestHooksWithFlask runs examples/hooks-flask/app.py as the application
// in the loop of a real hub process: its auth hook decides subscribers
// and publishers by their session cookie and grants private topics, its
// webhook endpoint verifies every delivery's signature; when it is down
// the hub fails closed, after a cached decision has expired.
func TestHooksWithFlask(t *testing.T) {
	python := testenv.NeedCommand(t, "python3")
	if err := exec.Command(python, "-c", "import flask").Run(); err != nil {
		testenv.Skip(t, "Flask is not installed (Debian package python3-flask): %v", err)
	}
	const secret = "flask-webhook-secret-0123456789"
	appAddr := e2etest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(appAddr)
	cmd := exec.Command(python, "../examples/hooks-flask/app.py", port)
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+secret, "CACHE_TTL=5")
	app := e2etest.StartProcess(t, "the Flask app", cmd)
	poll.Until(t, "the Flask app listens", 20*time.Second, func() bool {
		c, err := net.Dial("tcp", appAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	appURL := "http://" + appAddr

	cfg := filepath.Join(t.TempDir(), "hub.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[auth-hook]
url = "%s/ssekit/auth"
publish = true
forward-cookies = ["session"]
private-topics = ["https://example.com/users/"]
publish-topics = ["https://example.com/news"]
retry-after = "3s"

[[webhook]]
name = "flask"
url = "%s/ssekit/webhook"
secrets = ["%s"]
`, appURL, appURL, secret)), 0o600)
	h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--jwt-key", testSecret, "--data-dir", t.TempDir(), "--config", cfg}})
	session := func(value string) *http.Client {
		jar, _ := cookiejar.New(nil)
		u, _ := url.Parse(h.Base())
		jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: value}})
		return &http.Client{Jar: jar, Transport: h.Client.Transport}
	}
	get := func(c *http.Client, query string) (int, http.Header, string) {
		resp, err := c.Get(h.URL() + "?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return 200, resp.Header, ""
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	users := "topic=" + url.QueryEscape("https://example.com/users/{name}")

	// Allowed, with the private topic the application grants.
	alice := e2etest.OpenStream(t, session("s-alice"), h.URL(), users, "", 30*time.Second)
	tok := publisherToken(t)
	var public []string
	for _, u := range []struct {
		topic   string
		private bool
	}{{"https://example.com/users/bob", true}, {"https://example.com/users/alice", true}, {"https://example.com/users/bob", false}} {
		form := url.Values{"topic": {u.topic}, "data": {"x"}}
		if u.private {
			form.Set("private", "on")
		}
		id, err := e2etest.Publish(t.Context(), h.Client, h.URL(), tok, form)
		if err != nil {
			t.Fatal(err)
		}
		if !u.private {
			public = append(public, id)
		}
	}
	var got []string
	for _, ev := range alice.Until(t, public[0]) {
		if ev.ID != "" {
			got = append(got, ev.Data)
		}
	}
	if len(got) != 2 {
		t.Errorf("alice got %d updates; want 2 (hers and the public one, never bob's private one)", len(got))
	}
	alice.Close()

	// Refused.
	for _, tc := range []struct{ session, reason string }{{"s-bob", "banned"}, {"nobody", "log in first"}} {
		if code, _, body := get(session(tc.session), users); code != http.StatusForbidden || !strings.Contains(body, tc.reason) {
			t.Errorf("session %s: %d %q; want 403 %q", tc.session, code, body, tc.reason)
		}
	}

	// Publishing decided by the application.
	post := func(c *http.Client, topic string) int {
		resp, err := c.PostForm(h.URL(), url.Values{"topic": {topic}, "data": {"news"}})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(session("s-admin"), "https://example.com/news"); code != http.StatusOK {
		t.Errorf("admin publishing news: %d; want 200", code)
	}
	if code := post(session("s-alice"), "https://example.com/news"); code != http.StatusForbidden {
		t.Errorf("alice publishing: %d; want 403", code)
	}
	if code := post(session("s-admin"), "https://example.com/users/alice"); code != http.StatusForbidden {
		t.Errorf("admin publishing outside the granted topics: %d; want 403", code)
	}

	// Webhooks: every public update, verified and in order, by Flask.
	poll.Until(t, "the webhooks reach the Flask app", 30*time.Second, func() bool {
		var ids []string
		resp, err := http.Get(appURL + "/received")
		if err != nil {
			return false
		}
		json.NewDecoder(resp.Body).Decode(&ids)
		resp.Body.Close()
		return len(ids) == 2 && ids[0] == public[0]
	})
	forged, _ := http.NewRequest(http.MethodPost, appURL+"/ssekit/webhook", strings.NewReader(`{"id":"update:x","update":{"id":"x"}}`))
	forged.Header.Set("Ssekit-Webhook-Timestamp", fmt.Sprint(time.Now().Unix()))
	forged.Header.Set("Ssekit-Webhook-Signature", "v1=00")
	if resp, err := http.DefaultClient.Do(forged); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a forged delivery to the Flask app: %v %v; want 401", resp, err)
	} else {
		resp.Body.Close()
	}

	// The application down: a cached decision holds until it expires,
	// then the hub fails closed, telling nothing.
	e2etest.OpenStream(t, session("s-alice"), h.URL(), "topic=cached", "", 30*time.Second).Close()
	app.Kill()
	if code, _, _ := get(session("s-alice"), "topic=fresh"); code != http.StatusServiceUnavailable {
		t.Errorf("a new decision with the application down: %d; want 503", code)
	}
	var header http.Header
	var body string
	poll.Until(t, "the cached decision expires", 30*time.Second, func() bool {
		var code int
		code, header, body = get(session("s-alice"), "topic=cached")
		return code == http.StatusServiceUnavailable
	})
	if header.Get("Retry-After") != "3" || strings.Contains(body, appAddr) {
		t.Errorf("503 with Retry-After %q, body %q; want 3 and no detail", header.Get("Retry-After"), body)
	}
}
