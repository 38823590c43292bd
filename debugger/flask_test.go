package debugger_test

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse/internal/browsertest"
	"github.com/ssekit/sse/internal/testenv"
)

// articleSentences are what the article's Flask server sends.
var articleSentences = []string{
	"Hello, this is an example of a continuous text output.",
	"It contains multiple sentences, each of which will be sent to the client as an event.",
	"This is to simulate the functionality of Server-Sent Events (SSE).",
	"We can use this method to push real-time updates.",
	"End of sample text, thank you!",
}

// startArticleFlask runs testdata/article_flask.py on a free port and
// returns its /events URL. It skips (fails under SSEKIT_REQUIRE_ALL=1)
// without python3 and Flask.
func startArticleFlask(t *testing.T) string {
	t.Helper()
	python := testenv.NeedCommand(t, "python3")
	if err := exec.Command(python, "-c", "import flask").Run(); err != nil {
		testenv.Skip(t, "Flask is not installed (Debian package python3-flask): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(python, "testdata/article_flask.py", strconv.Itoa(port))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Flask server did not start on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr + "/events"
}

// TestUIArticleFlask debugs the article's Flask server in the page: the
// five sentences arrive about a second apart.
func TestUIArticleFlask(t *testing.T) {
	url := startArticleFlask(t)
	ui := newUI(t)
	ctx := browsertest.New(t)
	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.SendKeys("#url", url),
		chromedp.Click("#send"),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `window.ssekit.stats().events >= 5`, 30*time.Second)
	type rec struct {
		T    float64 `json:"t"`
		Kind string  `json:"kind"`
		Data string  `json:"data"`
	}
	recs, err := chromedp.Run(ctx, chromedp.Evaluate[[]rec](`window.ssekit.records().filter(r => r.kind === 'event').slice(0, 5)`))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Data != articleSentences[i] {
			t.Errorf("event %d: got %q; want %q", i, r.Data, articleSentences[i])
		}
		if i > 0 {
			if gap := r.T - recs[i-1].T; gap < 500 {
				t.Errorf("event %d came %.0f ms after the previous one; want about a second", i, gap)
			}
		}
	}
	// The page shows the gaps too.
	gaps, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#rows .row.event .c-gap')].slice(1, 5).map(c => c.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gaps {
		if !strings.HasSuffix(g, " s") && !strings.Contains(g, "ms") {
			t.Errorf("gap %q; want a time", g)
		}
	}
}
