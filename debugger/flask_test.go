package debugger_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse/internal/browsertest"
	"github.com/ssekit/sse/internal/e2etest"
)

// articleSentences are what the article's Flask server sends.
var articleSentences = []string{
	"Hello, this is an example of a continuous text output.",
	"It contains multiple sentences, each of which will be sent to the client as an event.",
	"This is to simulate the functionality of Server-Sent Events (SSE).",
	"We can use this method to push real-time updates.",
	"End of sample text, thank you!",
}

// TestUIArticleFlask debugs the article's Flask server in the page: the
// five sentences arrive about a second apart.
func TestUIArticleFlask(t *testing.T) {
	url := e2etest.StartArticleFlask(t, "../"+e2etest.ArticleFlask)
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
