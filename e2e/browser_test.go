package e2e_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse/internal/browsertest"
	"github.com/ssekit/sse/internal/e2etest"
)

// pageGot is what the test page's EventSource received, as "id data".
const pageGot = `window.got`

// TestBrowserResumesAfterRestart subscribes a real browser's EventSource
// to the hub, kills the hub (kill -9) and restarts it on the same port and
// data directory. The browser reconnects by itself with its Last-Event-ID:
// an update published while it was away arrives through replay, later ones
// live, and nothing it already had arrives twice.
func TestBrowserResumesAfterRestart(t *testing.T) {
	browserResumesAfterRestart(t, nil, e2etest.NewClient)
}

// TestBrowserResumesAfterRestartOverTLS is the same over HTTPS: Chromium
// speaks HTTP/2 (ALPN h2) to the hub's own HTTP/2 server, whose idle
// stream the writer pool serves.
func TestBrowserResumesAfterRestartOverTLS(t *testing.T) {
	cert := e2etest.NewTestCert(t)
	client := func(t testing.TB) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	browserResumesAfterRestart(t, []string{"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile}, client,
		chromedp.Flag("ignore-certificate-errors-spki-list", cert.SPKIHash))
}

func browserResumesAfterRestart(t *testing.T, extraArgs []string, newClient func(testing.TB) *http.Client, browserOptions ...chromedp.ExecAllocatorOption) {
	dataDir := t.TempDir()
	args := append([]string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", dataDir}, extraArgs...)
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	c := newClient(t)

	ctx := browsertest.New(t, browserOptions...)
	// A page of the hub's own origin, so the EventSource needs no CORS.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.Base()+"/")); err != nil {
		t.Fatal(err)
	}
	if h.Scheme == "https" {
		proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType("navigation")[0].nextHopProtocol`))
		if err != nil || proto != "h2" {
			t.Fatalf("the page came over %q (%v); want h2", proto, err)
		}
	}
	browsertest.OpenEventSource(t, ctx, "/.well-known/mercure?topic=browser")

	mustPublish(t, c, h.URL(), "browser", "b-1", "one")
	mustPublish(t, c, h.URL(), "browser", "b-2", "two")
	browsertest.WaitFor(t, ctx, pageGot+`.length === 2`, 30*time.Second)
	// The last update before the kill: the browser has it, and must not get
	// it again from the replay after the restart.
	mustPublish(t, c, h.URL(), "browser", "b-3", "three")
	browsertest.WaitFor(t, ctx, pageGot+`.length === 3`, 30*time.Second)

	h.Kill()
	browsertest.WaitFor(t, ctx, `window.errors >= 1 && es.readyState === EventSource.CONNECTING`, 30*time.Second)

	// While the browser cannot reach the hub, publish through another hub
	// process on the same data directory, on another port; the browser can
	// only get this update by replay after its Last-Event-ID.
	side := ssekit.Start(t, e2etest.HubSpec{Args: args})
	mustPublish(t, newClient(t), side.URL(), "browser", "b-4", "four")
	if err := side.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := side.Wait(30 * time.Second); err != nil {
		t.Fatalf("side hub exit: %v", err)
	}

	h = ssekit.Start(t, e2etest.HubSpec{Addr: h.Addr, Args: args})
	browsertest.WaitFor(t, ctx, `window.opens === 2`, 60*time.Second)
	c = newClient(t)
	mustPublish(t, c, h.URL(), "browser", "b-5", "five")
	browsertest.WaitFor(t, ctx, pageGot+`.includes("b-5 five")`, 30*time.Second)

	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](pageGot))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"b-1 one", "b-2 two", "b-3 three", "b-4 four", "b-5 five"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the page received\n%q\nwant\n%q", got, want)
	}
}

// TestBrowserUI drives the hub's page like a person: types a topic,
// clicks Subscribe, fills the publish form with a token from "ssekit
// token", clicks Publish, and sees the event in the list.
func TestBrowserUI(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	// No key: the development key, and anonymous subscribers.
	h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--data-dir", dataDir}})
	tok, stderr, code := ssekit.Run(t, nil, "", "token", "--data-dir", dataDir, "--publish", "ui-*", "--publish", "ui-topic")
	if code != 0 {
		t.Fatalf("ssekit token: exit code %d: %s", code, stderr)
	}
	tok = strings.TrimSpace(tok)

	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(h.Base()+"/"),
		chromedp.WaitVisible(chromedp.ID("subscribe-button")),
		chromedp.SetValue(chromedp.ID("topics"), "ui-topic"),
		chromedp.Click(chromedp.ID("subscribe-button")),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById("status").textContent === "subscribed to ui-topic"`, 30*time.Second)

	const data = "hello from the page"
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("ptopic"), "ui-topic"),
		chromedp.SetValue(chromedp.ID("pdata"), data),
		chromedp.SendKeys(chromedp.ID("ptoken"), tok),
		chromedp.Click(chromedp.ID("publish-button")),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById("published").textContent.startsWith("published ")`, 30*time.Second)
	browsertest.WaitFor(t, ctx, `[...document.querySelectorAll("#events li pre")].some((p) => p.textContent === `+jsString(data)+`)`, 30*time.Second)

	published, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("published")))
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(published, "published ")
	meta, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#events li .meta")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(meta, "id "+id+" ") {
		t.Errorf("the event shows %q; want the id the hub answered, %q", meta, id)
	}

	// A topic the token does not allow: the page shows the hub's refusal.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("ptopic"), "elsewhere"),
		chromedp.Click(chromedp.ID("publish-button")),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById("published").textContent.startsWith("403 ")`, 30*time.Second)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return fmt.Sprintf("%q", s) // Go's quoting is valid JavaScript for plain text
}

// TestBrowserUIDraft08 drives the page against a hub trusting an issuer of
// draft-08 access tokens: the page sees draft-08, subscribes to a URL
// Pattern with match_urlpattern= and its at+jwt token in the Authorization
// header (draft-08 allows none in the URL), and gets the private update
// an access token published; its cursor goes as last_event_id.
func TestBrowserUIDraft08(t *testing.T) {
	const issuer, resource = "https://issuer.test", "https://hub.test/.well-known/mercure"
	h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--jwt-key", testSecret, "--issuer", issuer, "--resource", resource,
		"--allow-anonymous", "--data-dir", t.TempDir()}})
	mint := func(grant ...string) string {
		tok, stderr, code := ssekit.Run(t, nil, "", append([]string{"token", "--key", testSecret, "--issuer", issuer, "--audience", resource}, grant...)...)
		if code != 0 {
			t.Fatalf("ssekit token: exit code %d: %s", code, stderr)
		}
		return strings.TrimSpace(tok)
	}
	pub, sub := mint("--publish", "*"), mint("--subscribe-urlpattern", "https://e.test/books/:id")

	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(h.Base()+"/"),
		chromedp.WaitVisible(chromedp.ID("subscribe-button")),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `window.hubDraft === "08"`, 30*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("topics"), "https://e.test/books/:id"),
		chromedp.SendKeys(chromedp.ID("subtoken"), sub),
		chromedp.Click(chromedp.ID("subscribe-button")),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById("status").textContent === "subscribed to https://e.test/books/:id"`, 30*time.Second)
	subscribed, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.subscribedURL`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(subscribed, "match_urlpattern=https%3A%2F%2Fe.test%2Fbooks%2F%3Aid") || strings.Contains(subscribed, "authorization=") {
		t.Errorf("the page subscribed at %s; want match_urlpattern= and no token in the URL", subscribed)
	}

	const data = "private, for draft-08"
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("ptopic"), "https://e.test/books/1"),
		chromedp.SetValue(chromedp.ID("pdata"), data),
		chromedp.SendKeys(chromedp.ID("ptoken"), pub),
		chromedp.Click(chromedp.ID("pprivate")),
		chromedp.Click(chromedp.ID("publish-button")),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById("published").textContent.startsWith("published ")`, 30*time.Second)
	browsertest.WaitFor(t, ctx, `[...document.querySelectorAll("#events li pre")].some((p) => p.textContent === `+jsString(data)+`)`, 30*time.Second)

	// Resuming: the cursor is draft-08's last_event_id.
	published, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("published")))
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(published, "published ")
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("lastid"), id),
		chromedp.Click(chromedp.ID("subscribe-button")),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `window.subscribedURL.includes("last_event_id=")`, 30*time.Second)
}
