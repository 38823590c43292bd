// Package browsertest runs a real headless Chromium for tests, through
// chromedp, so that what a browser's EventSource does is tested, not assumed.
//
// It only ever starts Debian's installed /usr/bin/chromium (or a chromium
// found in PATH): nothing here downloads a browser. A test on a machine
// without one is skipped, or failed under SSEKIT_REQUIRE_ALL=1 (see
// internal/testenv).
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse/internal/testenv"
)

// Chromium is where Debian installs the browser.
const Chromium = "/usr/bin/chromium"

// flags are the command-line switches the browser runs with: headless, no
// sandbox (tests often run as root in containers), and no traffic of its own
// (updates, sync, QUIC), so the only requests are the test's.
var flags = [...]string{
	"headless",
	"no-sandbox",
	"disable-gpu",
	"disable-background-networking",
	"disable-component-update",
	"no-first-run",
	"disable-sync",
	"disable-quic",
}

// New starts a fresh headless Chromium with its own profile directory under
// t.TempDir() and returns the context of a tab in it, for chromedp.Run. The
// browser stops when the test ends; if the test failed, what the page wrote
// to its console is logged. extra options come after the defaults and win
// over them (chromedp.Flag("disable-quic", false) lets a test use HTTP/3).
func New(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := Chromium
	if _, err := os.Stat(path); err != nil {
		path = testenv.NeedCommand(t, "chromium")
	}

	profile := filepath.Join(t.TempDir(), "profile")
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(profile)}
	for _, f := range flags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)

	// Start the browser now, so a browser that cannot start fails here
	// with a clear message rather than in the middle of the test.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("browsertest: starting %s: %v", path, err)
	}

	console := &consoleLog{}
	var wg sync.WaitGroup
	wg.Go(func() { console.collect(ctx) })

	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		wg.Wait()
		if t.Failed() {
			for _, line := range console.lines() {
				t.Logf("browser console: %s", line)
			}
		}
		// Chromium's helper processes can still write to the profile
		// for a moment after the browser exits; retry so that
		// t.TempDir's own removal does not fail the test.
		removeAll(profile, 10*time.Second)
	})
	return ctx
}

// OpenEventSource opens an EventSource on url in the page as window.es,
// counting its opens in window.opens and its errors in window.errors and
// keeping what it receives in window.got as "id data" strings, and waits
// for it to open.
func OpenEventSource(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`
		window.got = []; window.opens = 0; window.errors = 0;
		window.es = new EventSource(%q);
		es.onopen = () => { window.opens++; };
		es.onerror = () => { window.errors++; };
		es.onmessage = (e) => { window.got.push(e.lastEventId + " " + e.data); };
	`, url))); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, ctx, `window.opens === 1`, 30*time.Second)
}

// WaitFor waits until the JavaScript expression is truthy in the page, or
// fails the test after timeout with the page's text, to show what it did see.
func WaitFor(t testing.TB, ctx context.Context, expr string, timeout time.Duration) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(timeout),
		chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		t.Fatalf("browsertest: waiting for %s: %v\npage text:\n%s", expr, err, Text(ctx))
	}
}

// Text returns the page's visible text, or the error reading it, for
// failure messages.
func Text(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(cannot read the page: " + err.Error() + ")"
	}
	return text
}

// consoleLog keeps the page's console messages.
type consoleLog struct {
	mu   sync.Mutex
	msgs []string // guarded by mu
}

func (c *consoleLog) collect(ctx context.Context) {
	for m, err := range chromedp.Console(ctx) {
		if err != nil {
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, string(m.Type)+": "+strings.TrimSpace(m.Text))
		c.mu.Unlock()
	}
}

func (c *consoleLog) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

func removeAll(dir string, patience time.Duration) {
	deadline := time.Now().Add(patience)
	for {
		err := os.RemoveAll(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
