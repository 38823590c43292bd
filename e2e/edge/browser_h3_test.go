package edge_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse/internal/browsertest"
	"github.com/ssekit/sse/internal/e2etest"
)

// TestBrowserHTTP3: Debian's Chromium, told to use QUIC for the hub's
// origin and to accept the test certificate's key, loads the hub's page
// and subscribes with EventSource over HTTP/3 (the performance entries say
// h3), receives updates, and after a hub restart reconnects by itself and
// gets what it missed by replay.
func TestBrowserHTTP3(t *testing.T) {
	tc := e2etest.NewTestCert(t)
	args := append([]string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir()}, tc.Args()...)
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	ctx := browsertest.New(t,
		chromedp.Flag("disable-quic", false),
		chromedp.Flag("enable-quic", true),
		chromedp.Flag("origin-to-force-quic-on", h.Addr),
		chromedp.Flag("ignore-certificate-errors-spki-list", tc.SPKIHash),
	)
	tcp := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.Pool}}
	t.Cleanup(tcp.CloseIdleConnections)
	c := &http.Client{Transport: tcp}

	if err := chromedp.Do(ctx, chromedp.Navigate(h.Base()+"/")); err != nil {
		t.Fatal(err)
	}
	browsertest.OpenEventSource(t, ctx, "/.well-known/mercure?topic=browser-h3")
	proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType("navigation")[0].nextHopProtocol`))
	if err != nil {
		t.Fatal(err)
	}
	if proto != "h3" {
		t.Fatalf("the page came over %q; want h3", proto)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`fetch("/healthz").then(() => { window.fetched = true; })`)); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `window.fetched === true`, 30*time.Second)
	browsertest.WaitFor(t, ctx, `performance.getEntriesByType("resource").some(e => e.name.endsWith("/healthz") && e.nextHopProtocol === "h3")`, 10*time.Second)

	mustPublish(t, c, h.URL(), "browser-h3", "b-1", "one")
	browsertest.WaitFor(t, ctx, `window.got.length === 1`, 30*time.Second)

	if err := h.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := h.Wait(30 * time.Second); err != nil {
		t.Fatalf("hub exit: %v", err)
	}
	browsertest.WaitFor(t, ctx, `window.errors >= 1`, 30*time.Second)
	side := ssekit.Start(t, e2etest.HubSpec{Args: append([]string{"--http3=false"}, args...)})
	mustPublish(t, c, side.URL(), "browser-h3", "b-2", "two")
	side.Cmd.Process.Signal(syscall.SIGTERM)
	if err := side.Wait(30 * time.Second); err != nil {
		t.Fatalf("side hub exit: %v", err)
	}
	h = ssekit.Start(t, e2etest.HubSpec{Addr: h.Addr, Args: args})
	browsertest.WaitFor(t, ctx, `window.opens === 2`, 60*time.Second)
	mustPublish(t, c, h.URL(), "browser-h3", "b-3", "three")
	browsertest.WaitFor(t, ctx, `window.got.length === 3`, 30*time.Second)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.got`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b-1 one", "b-2 two", "b-3 three"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the page received %q; want %q", got, want)
	}
}
