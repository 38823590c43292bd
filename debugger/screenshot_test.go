package debugger_test

import (
	"bytes"
	"fmt"
	pngpkg "image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/internal/browsertest"
)

// TestScreenshots takes the pictures of the page in use and checks each
// is a real 1440×860 image. With SSEKIT_SCREENSHOTS=1 it saves them in
// docs/ (the README shows one):
//
//	SSEKIT_SCREENSHOTS=1 go test ./debugger -run TestScreenshots
func TestScreenshots(t *testing.T) {
	dir := t.TempDir()
	if os.Getenv("SSEKIT_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "docs")
	}
	ui := newUI(t)
	mux := http.NewServeMux()
	mux.Handle("/orders", orders())
	mux.Handle("/v1/chat/completions", chatAPI(t, 40*time.Millisecond))
	upstream := httptest.NewServer(mux)
	t.Cleanup(upstream.Close)
	ctx := browsertest.New(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		img, err := pngpkg.DecodeConfig(bytes.NewReader(png))
		if err != nil || img.Width != 1440 || img.Height != 860 {
			t.Fatalf("%s: %dx%d, %v; want a 1440x860 PNG", name, img.Width, img.Height, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := do(ctx,
		chromedp.EmulateViewport(1440, 860),
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
	); err != nil {
		t.Fatal(err)
	}
	shot("debug-empty.png")

	if err := do(ctx,
		chromedp.SendKeys("#url", upstream.URL+"/orders?region=eu&limit=100"),
		chromedp.Click("#send"),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `window.ssekit.stats().events >= 40`, 30*time.Second)
	shot("debug-streaming.png")

	// Stop the stream so the list holds still while a row is picked (rows
	// re-render as records arrive), then pick the fourth order event.
	if err := do(ctx, chromedp.Click("#stop")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `!document.body.textContent.includes('streaming')`, 10*time.Second)
	if err := do(ctx, chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('#rows .row.event')].filter(r => r.querySelector('.c-type').textContent === 'order')[3].click()`)); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('detail-data').textContent.includes('"order"')`, 5*time.Second)
	shot("debug-detail.png")

	if err := do(ctx,
		chromedp.SetValue("#method", "POST"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('url').value = ''`),
		chromedp.SendKeys("#url", upstream.URL+"/v1/chat/completions"),
		chromedp.Click(`button[data-tab="headers"]`),
		chromedp.Click("#add-header"),
		chromedp.SendKeys("#headers tr:last-child .k", "X-Org"),
		chromedp.SendKeys("#headers tr:last-child .v", "acme"),
		chromedp.Click(`button[data-tab="auth"]`),
		chromedp.SendKeys("#bearer", "sk-test"),
		chromedp.Click(`button[data-tab="body"]`),
		chromedp.SendKeys("#body", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"Say hello and check the weather in Paris"}]}`),
		chromedp.Click("#format-body"),
		chromedp.Click("#send"),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('llm-finish').textContent.includes('tool_calls')`, 20*time.Second)
	// Found and clicked in one step in the page: the list re-renders while
	// events arrive, so a node chromedp looked up first can be gone by the
	// time it clicks ("Could not find node with given id").
	const sixth = `document.evaluate('//div[contains(@class,"event")][span[@class="c-id"]][6]', document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue`
	browsertest.WaitFor(t, ctx, sixth+` !== null`, 20*time.Second)
	if err := do(ctx, chromedp.Evaluate[chromedp.Void](sixth+`.click()`)); err != nil {
		t.Fatal(err)
	}
	shot("debug-llm.png")
}

// orders is a lively stream for the pictures: order events, status
// updates and heartbeats, with ids.
func orders() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{})
		if err != nil {
			return
		}
		defer s.Close()
		items := []string{"keyboard", "monitor", "desk lamp", "headphones", "webcam", "usb hub"}
		states := []string{"paid", "packed", "shipped"}
		for i := 1; i <= 60; i++ {
			ev := sse.Event{ID: fmt.Sprint(i)}
			switch {
			case i%5 == 0:
				ev.Type = "status"
				ev.Data = fmt.Sprintf(`{"order":%d,"state":%q}`, 1000+i-3, states[i%3])
			case i%7 == 0:
				ev.Type = "stock"
				ev.Data = fmt.Sprintf(`{"sku":"SKU-%03d","left":%d}`, i*7%300, 40-i%40)
			default:
				ev.Type = "order"
				ev.Data = fmt.Sprintf(`{"order":%d,"customer":{"id":"c-%d","country":"FR"},"items":[{"name":%q,"qty":%d,"price":%d.99}],"total":%d.97}`,
					1000+i, 300+i, items[i%len(items)], 1+i%3, 20+i*3, (1+i%3)*(20+i*3))
			}
			if i == 1 {
				ev.Retry = 3 * time.Second
			}
			if err := s.Send(ev); err != nil {
				return
			}
			if i%12 == 0 {
				s.Comment("keep-alive")
			}
			d := time.Duration(15+(i*37)%60) * time.Millisecond
			if i == 20 {
				d = 400 * time.Millisecond
			}
			select {
			case <-time.After(d):
			case <-s.Context().Done():
				return
			}
		}
		<-s.Context().Done()
	})
}
