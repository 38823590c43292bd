package debugger_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse/internal/browsertest"
)

// tenThousand serves 10,000 events at once (one write) and holds the
// stream open.
func tenThousand() http.Handler {
	var b strings.Builder
	for i := 1; i <= 10000; i++ {
		typ := "order"
		if i%5 == 0 {
			typ = "status"
		}
		fmt.Fprintf(&b, "id: %d\nevent: %s\ndata: {\"order\":%d,\"customer\":\"c-%d\",\"items\":[{\"sku\":\"SKU-%03d\",\"qty\":%d}],\"total\":%d.99}\n\n", i, typ, 1000+i, i%977, i%300, 1+i%4, 10+i%90)
	}
	wire := b.String()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write([]byte(wire))
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
}

// measureJS runs in the page: it injects 10,000 event records as the
// backend sends them, waits until they are rendered, then scrolls the
// list through them frame by frame and reports the frame times.
const measureJS = `(async () => {
  const frame = () => new Promise(r => requestAnimationFrame(() => r(performance.now())));
  const recs = [];
  for (let i = 1; i <= 10000; i++) recs.push({t: i * 2, kind: 'event', seq: i, id: String(i), type: i % 5 ? 'order' : 'status',
    data: JSON.stringify({order: 1000 + i, customer: 'c-' + (i % 977), items: [{sku: 'SKU-' + (i % 300), qty: 1 + i % 4}], total: 10.99 + i % 90}),
    raw: 'id: ' + i + '\ndata: {...}\n\n', bytes: i * 150});
  await frame();
  const t0 = performance.now();
  window.ssekit.inject(recs);
  await frame(); const t1 = await frame();
  const inject = t1 - t0;
  const list = document.getElementById('list');
  document.getElementById('follow').checked = false;
  list.scrollTop = 0;
  await frame(); await frame();
  const times = [];
  let last = await frame();
  for (let f = 0; f < 300; f++) {
    list.scrollTop += 240;           // 10 rows a frame: a fast fling
    const now = await frame();
    times.push(now - last); last = now;
  }
  // A jump to the middle and a search over all 10,000 rows.
  const j0 = performance.now(); list.scrollTop = 5000 * 24; await frame(); const jump = performance.now() - j0;
  const s0 = performance.now();
  document.getElementById('search').value = 'c-976';
  document.getElementById('search').dispatchEvent(new Event('input'));
  await new Promise(r => setTimeout(r, 150)); await frame();
  const search = performance.now() - s0 - 120; // less the input debounce
  times.sort((a, b) => a - b);
  const pct = p => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  const cost = window.ssekit.renderCost().slice(-300).sort((a, b) => a - b);
  return {inject, p50: pct(0.5), p95: pct(0.95), max: times[times.length - 1], long: times.filter(t => t > 50).length,
    jump, search, renderP50: cost[Math.floor(cost.length / 2)], renderMax: cost[cost.length - 1], domRows: document.getElementById('rows').childElementCount, rows: window.ssekit.stats().rows};
})()`

// streamJS clicks Send and waits until 10,000 events from the backend
// are rendered, timing the frames meanwhile.
const streamJS = `(async () => {
  const frame = () => new Promise(r => requestAnimationFrame(() => r(performance.now())));
  const t0 = performance.now();
  document.getElementById('send').click();
  const times = [];
  let last = t0;
  for (let i = 0; i < 100000; i++) {
    const now = await frame();
    times.push(now - last); last = now;
    if (window.ssekit.stats().events >= 10000) break;
  }
  await frame();
  const total = performance.now() - t0;
  times.sort((a, b) => a - b);
  return {total, frames: times.length, p95: times[Math.floor(0.95 * times.length)], max: times[times.length - 1],
    long: times.filter(t => t > 50).length, domRows: document.getElementById('rows').childElementCount};
})()`

// BenchmarkUI10kEvents measures the page with 10,000 events in headless
// Chromium: rendering them, scrolling through them, and receiving them
// from a stream through the backend. Run it once:
//
//	go test ./debugger -run '^$' -bench UI10k -benchtime 1x
func BenchmarkUI10kEvents(b *testing.B) {
	ui := newUI(b)
	stream := httptest.NewServer(tenThousand())
	b.Cleanup(stream.Close)
	for b.Loop() {
		ctx := browsertest.New(b)
		if err := do(ctx,
			chromedp.EmulateViewport(1440, 900),
			chromedp.Navigate(ui.URL+"/?token="+testToken),
			chromedp.WaitVisible("#url"),
		); err != nil {
			b.Fatal(err)
		}
		type measure struct {
			Inject, P50, P95, Max, Jump, Search float64
			RenderP50, RenderMax                float64
			Long, DomRows, Rows                 int
		}
		m, err := chromedp.Run(ctx, chromedp.Evaluate[measure](measureJS, chromedp.EvalAwaitPromise))
		if err != nil {
			b.Fatal(err)
		}
		if m.Rows != 10000 || m.DomRows > 100 {
			b.Fatalf("%d rows, %d in the DOM; want 10000 and a virtualised list", m.Rows, m.DomRows)
		}
		b.ReportMetric(m.Inject, "inject+render-ms")
		b.ReportMetric(m.P50, "scroll-frame-p50-ms")
		b.ReportMetric(m.P95, "scroll-frame-p95-ms")
		b.ReportMetric(m.Max, "scroll-frame-max-ms")
		b.ReportMetric(float64(m.Long), "frames>50ms")
		b.ReportMetric(m.RenderP50, "render-p50-ms")
		b.ReportMetric(m.RenderMax, "render-max-ms")
		b.ReportMetric(m.Jump, "jump-ms")
		b.ReportMetric(m.Search, "search-ms")
		b.ReportMetric(float64(m.DomRows), "dom-rows")

		ctx2 := browsertest.New(b)
		if err := do(ctx2,
			chromedp.EmulateViewport(1440, 900),
			chromedp.Navigate(ui.URL+"/?token="+testToken),
			chromedp.WaitVisible("#url"),
			chromedp.SendKeys("#url", stream.URL+"/"),
		); err != nil {
			b.Fatal(err)
		}
		type streamed struct {
			Total, P95, Max       float64
			Frames, Long, DomRows int
		}
		s, err := chromedp.Run(ctx2, chromedp.Evaluate[streamed](streamJS, chromedp.EvalAwaitPromise))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(s.Total, "stream10k-ms")
		b.ReportMetric(s.P95, "stream-frame-p95-ms")
		b.ReportMetric(s.Max, "stream-frame-max-ms")
		b.ReportMetric(float64(s.Long), "stream-frames>50ms")
		b.ReportMetric(float64(s.Frames), "stream-frames")
	}
}
