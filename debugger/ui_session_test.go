package debugger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/internal/browsertest"
)

// fed serves, as they come, the bytes the test sends on wire, and holds
// the stream open until the client goes: the test decides when each event
// arrives, with no timing involved.
func fed(wire <-chan string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		rc.Flush()
		for {
			select {
			case b := <-wire:
				if _, err := io.WriteString(w, b); err != nil {
					return
				}
				rc.Flush()
			case <-r.Context().Done():
				return
			}
		}
	})
}

// answerPrompts answers every window.prompt the page opens with answer, as
// a person typing it and pressing OK, and accepts every confirm.
func answerPrompts(t *testing.T, ctx context.Context, answer string) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	opening := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range opening {
			if err != nil {
				return
			}
			// A command from the goroutine that reads the events would
			// wait for itself; answer from another one.
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true, PromptText: answer})
		}
	}()
}

// pick chooses an option of a <select>, as a person would with the mouse:
// the value changes and the page hears a change event.
func pick(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector(` + jsString(sel) + `); s.value = ` + jsString(value) +
		`; s.dispatchEvent(new Event('change', {bubbles: true})); })()`)
}

// eval reads a value from the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// TestUISavedRequests saves a request in the browser, reloads the page,
// picks it from the saved list (bearer token included: it stays in this
// browser) and deletes it.
func TestUISavedRequests(t *testing.T) {
	ui := newUI(t)
	ctx := browsertest.New(t)
	answerPrompts(t, ctx, "orders on staging")
	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.SetValue("#method", "POST"),
		chromedp.SendKeys("#url", "http://127.0.0.1:1/orders?region=eu"),
		chromedp.Click(`button[data-tab="headers"]`),
		chromedp.Click("#add-header"),
		chromedp.SendKeys("#headers tr:last-child .k", "X-Org"),
		chromedp.SendKeys("#headers tr:last-child .v", "acme"),
		chromedp.Click(`button[data-tab="auth"]`),
		chromedp.SendKeys("#bearer", "sk-saved"),
		chromedp.Click(`button[data-tab="body"]`),
		chromedp.SendKeys("#body", `{"stream":true}`),
		chromedp.Click("#save"),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('saved').value === 'orders on staging'`, 10*time.Second)

	// Reload, then empty the form: what comes back must come from the
	// saved list.
	if err := do(ctx,
		chromedp.Reload(),
		chromedp.WaitVisible("#url"),
	); err != nil {
		t.Fatal(err)
	}
	options := eval[[]string](t, ctx, `[...document.getElementById('saved').options].map(o => o.value)`)
	if len(options) != 2 || options[1] != "orders on staging" {
		t.Fatalf("saved list after a reload: got %q; want the placeholder and %q", options, "orders on staging")
	}
	if err := do(ctx,
		chromedp.Clear("#url"),
		chromedp.SendKeys("#url", "http://127.0.0.1:1/other"),
		chromedp.SetValue("#method", "GET"),
		chromedp.Click(`button[data-tab="body"]`),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('body').select()`), // Ctrl+A
		chromedp.KeyEvent(kb.Backspace),
		pick("#saved", "orders on staging"),
	); err != nil {
		t.Fatal(err)
	}
	got := eval[map[string]any](t, ctx, `window.ssekit.spec()`)
	if got["method"] != "POST" || got["url"] != "http://127.0.0.1:1/orders?region=eu" || got["body"] != `{"stream":true}` {
		t.Errorf("picked from the saved list: got %v; want POST, the URL and the body", got)
	}
	headers := fmtJSON(got["headers"])
	if !strings.Contains(headers, `{"name":"X-Org","value":"acme"}`) || !strings.Contains(headers, `{"name":"Authorization","value":"Bearer sk-saved"}`) {
		t.Errorf("picked headers: got %s; want X-Org and the bearer token", headers)
	}
	if p := eval[string](t, ctx, `document.querySelector('#params .k').value + '=' + document.querySelector('#params .v').value`); p != "region=eu" {
		t.Errorf("params table: got %q; want region=eu", p)
	}

	// Delete it: gone from the list, and still gone after a reload.
	if err := do(ctx, chromedp.Click("#delete-saved")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('saved').options.length === 1`, 10*time.Second)
	if err := do(ctx, chromedp.Reload(), chromedp.WaitVisible("#url")); err != nil {
		t.Fatal(err)
	}
	if n := eval[int](t, ctx, `document.getElementById('saved').options.length`); n != 1 {
		t.Errorf("saved list after delete and reload: got %d options; want the placeholder only", n)
	}
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// eventRowIDs lists the ids of the event rows the page shows.
const eventRowIDs = `[...document.querySelectorAll('#rows .row.event .c-id')].map(c => c.textContent).join(',')`

// TestUIPauseClearExport watches a stream whose events the test sends one
// by one: Pause freezes the list while events keep arriving and counting,
// Resume shows them, Clear empties the list while the session goes on,
// and Export JSONL downloads the session as records that "ssekit replay"
// reads, raw bytes included.
func TestUIPauseClearExport(t *testing.T) {
	ui := newUI(t)
	wire := make(chan string, 64)
	stream := httptest.NewServer(fed(wire))
	t.Cleanup(stream.Close)
	ctx := browsertest.New(t)
	send := func(ids ...string) {
		for _, id := range ids {
			wire <- "id: " + id + "\ndata: {\"n\":" + id + "}\n\n"
		}
	}

	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.SendKeys("#url", stream.URL+"/events"),
		chromedp.Click(`button[data-tab="options"]`),
		chromedp.Click("#raw"), // keep raw chunks: they are exported too
		chromedp.Click("#send"),
	); err != nil {
		t.Fatal(err)
	}
	send("1", "2", "3")
	browsertest.WaitFor(t, ctx, eventRowIDs+` === '1,2,3'`, 20*time.Second)

	// Pause: the events keep arriving and counting, the list stays as it
	// was and says how many are new.
	if err := do(ctx, chromedp.Click("#pause")); err != nil {
		t.Fatal(err)
	}
	if label := eval[string](t, ctx, `document.getElementById('pause').textContent`); label != "Resume" {
		t.Errorf("the Pause button reads %q once pressed; want Resume", label)
	}
	send("4", "5", "6", "7")
	browsertest.WaitFor(t, ctx, `document.getElementById('s-events').textContent === '7'`, 20*time.Second)
	browsertest.WaitFor(t, ctx, `document.getElementById('list-info').textContent.includes('paused, 4 new')`, 10*time.Second)
	if ids := eval[string](t, ctx, eventRowIDs); ids != "1,2,3" {
		t.Errorf("rows while paused: got %s; want 1,2,3 (frozen)", ids)
	}
	if err := do(ctx, chromedp.Click("#pause")); err != nil { // Resume
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, eventRowIDs+` === '1,2,3,4,5,6,7'`, 10*time.Second)
	if info := eval[string](t, ctx, `document.getElementById('list-info').textContent`); strings.Contains(info, "paused") {
		t.Errorf("list info after Resume: got %q; want no paused count", info)
	}

	// Clear: the list and the counts start over, the session goes on.
	if err := do(ctx, chromedp.Click("#clear")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.querySelectorAll('#rows .row').length === 0 && document.getElementById('s-events').textContent === '0'`, 10*time.Second)
	if state := eval[string](t, ctx, `document.getElementById('state').textContent`); state != "streaming" {
		t.Errorf("state after Clear: got %q; want streaming", state)
	}
	send("8")
	browsertest.WaitFor(t, ctx, eventRowIDs+` === '8'`, 20*time.Second)
	if ev := eval[string](t, ctx, `document.getElementById('s-events').textContent`); ev != "1" {
		t.Errorf("events counted after Clear and one more: got %s; want 1", ev)
	}

	// Export: the browser downloads a .jsonl file.
	recs := export(t, ctx)
	var kinds, ids []string
	var raw strings.Builder
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
		switch r.Kind {
		case debugger.KindEvent:
			ids = append(ids, r.ID)
			if r.Data != `{"n":8}` || r.Raw != "id: 8\ndata: {\"n\":8}\n\n" || r.Seq != 8 {
				t.Errorf("exported event: got %+v; want id 8, its data, raw block and seq 8", r)
			}
		case debugger.KindRaw:
			raw.WriteString(r.Raw)
		}
	}
	if kinds[0] != debugger.KindRequest || recs[0].Request == nil || !strings.HasSuffix(recs[0].Request.URL, "/events") {
		t.Errorf("first exported record: got %+v; want the request", recs[0])
	}
	if strings.Join(ids, ",") != "8" {
		t.Errorf("exported events after Clear: got %q; want 8 only", ids)
	}
	if raw.String() != "id: 8\ndata: {\"n\":8}\n\n" {
		t.Errorf("exported raw chunks after Clear: got %q; want the bytes of event 8", raw.String())
	}
}

// export clicks Export JSONL, lets the browser download the file into a
// temporary directory, checks that every line is one record in the format
// of debugger.Record (no field it does not know), and returns the records
// as "ssekit replay" reads them.
func export(t *testing.T, ctx context.Context) []debugger.Record {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	begin := chromedp.Events(ctx, browser.DownloadWillBegin)
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	allow := true
	if _, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &allow,
	}); err != nil {
		t.Fatal(err)
	}
	if err := do(ctx, chromedp.Click("#export")); err != nil {
		t.Fatal(err)
	}
	for ev, err := range begin {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if !strings.HasPrefix(ev.SuggestedFilename, "ssekit-session-") || !strings.HasSuffix(ev.SuggestedFilename, ".jsonl") {
			t.Errorf("download named %q; want ssekit-session-….jsonl", ev.SuggestedFilename)
		}
		break
	}
	var file string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download to complete: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the download was canceled")
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			file = filepath.Join(dir, ev.GUID)
			break
		}
	}
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(content, []byte("\n")) {
		t.Errorf("the export does not end with a newline")
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(content), "\n"), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var r debugger.Record
		if err := dec.Decode(&r); err != nil || r.Kind == "" {
			t.Errorf("export line %d %q: %v; want one record with a kind", i+1, line, err)
		}
	}
	recs, err := debugger.ReadRecords(bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("the export holds no record")
	}
	return recs
}

// TestUIRawNotUTF8 watches a stream with bytes that are not UTF-8: the
// page's raw view shows each such byte as \xNN, exact, and the export
// keeps them exact too.
func TestUIRawNotUTF8(t *testing.T) {
	ui := newUI(t)
	wire := make(chan string, 4)
	stream := httptest.NewServer(fed(wire))
	t.Cleanup(stream.Close)
	ctx := browsertest.New(t)
	const block = "id: 1\ndata: caf\xe9 \x80 \xe2\x82 \xe2\x82\xac\r\n\n"
	wire <- block

	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.SendKeys("#url", stream.URL+"/latin1"),
		chromedp.Click(`button[data-tab="options"]`),
		chromedp.Click("#raw"),
		chromedp.Click("#send"),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, eventRowIDs+` === '1'`, 20*time.Second)
	if err := do(ctx,
		chromedp.Click(`#rows .row.event`),
		chromedp.Click(`#detail button[data-tab="raw"]`),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('detail-raw').textContent !== ''`, 10*time.Second)
	raw := eval[string](t, ctx, `document.getElementById('detail-raw').textContent`)
	if want := "id: 1␊\ndata: caf\\xE9 \\x80 \\xE2\\x82 €␍␊\n␊\n"; raw != want {
		t.Errorf("raw view: got %q; want %q", raw, want)
	}
	// The data, as a browser's EventSource decodes it.
	if data := eval[string](t, ctx, `document.getElementById('detail-data').textContent`); data != "caf\uFFFD \uFFFD \uFFFD €" {
		t.Errorf("data view: got %q; want U+FFFD for each invalid sequence, as a browser decodes it", data)
	}

	recs := export(t, ctx)
	var chunks strings.Builder
	for _, r := range recs {
		switch r.Kind {
		case debugger.KindRaw:
			chunks.WriteString(r.Raw)
		case debugger.KindEvent:
			if r.Raw != block {
				t.Errorf("exported event raw: got %q; want %q", r.Raw, block)
			}
		}
	}
	if chunks.String() != block {
		t.Errorf("exported raw chunks: got %q; want %q", chunks.String(), block)
	}
}

// TestUILostServer cuts the page's connection to the debug server in the
// middle of a session: the page says so instead of waiting for ever.
func TestUILostServer(t *testing.T) {
	ui := newUI(t)
	wire := make(chan string, 4)
	stream := httptest.NewServer(fed(wire))
	t.Cleanup(stream.Close)
	ctx := browsertest.New(t)
	wire <- "id: 1\ndata: one\n\n"
	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.SendKeys("#url", stream.URL+"/events"),
		chromedp.Click("#send"),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, eventRowIDs+` === '1'`, 20*time.Second)
	ui.CloseClientConnections()
	browsertest.WaitFor(t, ctx, `document.getElementById('state').textContent === 'lost the debug server' && document.getElementById('stop').disabled`, 20*time.Second)
}
