package debugger_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/internal/browsertest"
	"github.com/ssekit/sse/internal/llmtest"
)

const testToken = "test-token-0123456789"

// newUI serves the debugger page and API on a local server.
func newUI(t testing.TB) *httptest.Server {
	t.Helper()
	ui := debugger.New(debugger.Config{Token: testToken})
	srv := httptest.NewServer(ui)
	t.Cleanup(func() {
		ui.Close()
		srv.Close()
	})
	return srv
}

// ticks serves n events with ids 1…n, even ones of type "tick", every
// interval, then holds the stream open until the client goes.
func ticks(n int, interval time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{})
		if err != nil {
			return
		}
		defer s.Close()
		for i := 1; i <= n; i++ {
			ev := sse.Event{ID: fmt.Sprint(i), Data: fmt.Sprintf(`{"n":%d,"msg":"event %d"}`, i, i)}
			if i%2 == 0 {
				ev.Type = "tick"
			}
			if err := s.Send(ev); err != nil {
				return
			}
			if i == 2 {
				s.Comment("heartbeat")
			}
			select {
			case <-time.After(interval):
			case <-s.Context().Done():
				return
			}
		}
		<-s.Context().Done()
	})
}

// openAIChunks are the events of an OpenAI-style chat completion stream
// answering "Hello, world!" and calling a tool.
var openAIChunks = []string{
	`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
	`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}`,
	`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":", wor"},"finish_reason":null}]}`,
	`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"ld!"},"finish_reason":null}]}`,
	`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`,
	`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}`,
	`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}`,
	`{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
	`[DONE]`,
}

// chatAPI is an OpenAI-style streaming endpoint: it wants POST, a JSON body
// with "stream": true and a bearer token, as the real API does, and answers
// with openAIChunks.
func chatAPI(t testing.TB, interval time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Stream   bool `json:"stream"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		raw, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost:
			http.Error(w, `{"error":"want POST"}`, http.StatusMethodNotAllowed)
			return
		case r.Header.Get("Authorization") != "Bearer sk-test":
			http.Error(w, `{"error":"invalid API key"}`, http.StatusUnauthorized)
			return
		case r.Header.Get("X-Org") != "acme":
			http.Error(w, `{"error":"missing X-Org"}`, http.StatusBadRequest)
			return
		case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || json.Unmarshal(raw, &body) != nil || !body.Stream:
			http.Error(w, `{"error":"want a JSON body with stream: true"}`, http.StatusBadRequest)
			return
		}
		s, err := sse.NewStream(w, r, sse.StreamConfig{})
		if err != nil {
			return
		}
		defer s.Close()
		for _, c := range openAIChunks {
			if err := s.Send(sse.Event{Data: c}); err != nil {
				return
			}
			time.Sleep(interval)
		}
	})
}

// rowsJS lists the event rows the page shows, as [id, type, data].
const rowsJS = `[...document.querySelectorAll('#rows .row.event')].map(r => [r.querySelector('.c-id').textContent, r.querySelector('.c-type').textContent, r.querySelector('.c-data').textContent])`

// TestUIShowsEvents drives the page as a person would: types the URL of a
// local stream, clicks Send, and sees the events appear with their ids and
// types; then selects one and sees its data pretty-printed and its raw
// bytes.
func TestUIShowsEvents(t *testing.T) {
	ui := newUI(t)
	stream := httptest.NewServer(ticks(5, 30*time.Millisecond))
	t.Cleanup(stream.Close)
	ctx := browsertest.New(t)

	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.SendKeys("#url", stream.URL+"/events?topic=a"),
		chromedp.Click("#send"),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.querySelectorAll('#rows .row.event').length === 5`, 20*time.Second)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](rowsJS))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		wantType := "message"
		if (i+1)%2 == 0 {
			wantType = "tick"
		}
		if r[0] != fmt.Sprint(i+1) || r[1] != wantType || !strings.Contains(r[2], fmt.Sprintf(`"n":%d`, i+1)) {
			t.Errorf("row %d: got %q; want id %d, type %s, data with n %d", i, r, i+1, wantType, i+1)
		}
	}
	// The query parameter typed in the URL shows in the params table.
	param, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#params .k').value + '=' + document.querySelector('#params .v').value`))
	if err != nil || param != "topic=a" {
		t.Errorf("params table: got %q (%v); want topic=a", param, err)
	}
	// The heartbeat is listed, in its own style.
	browsertest.WaitFor(t, ctx, `[...document.querySelectorAll('#rows .row.comment')].some(r => r.textContent.includes('heartbeat'))`, 5*time.Second)

	// Select the third event: its data pretty-printed, its raw bytes.
	if err := do(ctx, chromedp.Click(`//div[contains(@class,"event")][span[@class="c-id" and text()="3"]]`)); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('detail-data').textContent.includes('"msg": "event 3"')`, 5*time.Second)
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('detail-raw').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	// The block of event 3 holds the heartbeat sent before it.
	if want := ": heartbeat␊\nid:3␊\ndata:{\"n\":3,\"msg\":\"event 3\"}␊\n␊\n"; raw != want {
		t.Errorf("raw bytes: got %q; want %q", raw, want)
	}

	// The summary: status, events, a first-event time.
	summary, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`['s-status','s-events','s-first','s-conns'].map(id => document.getElementById(id).textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(summary[0], "200") || !strings.HasPrefix(summary[1], "5") || summary[2] == "–" || summary[3] != "1" {
		t.Errorf("summary: got %q; want status 200, 5 events, a first-event time, 1 connection", summary)
	}

	// Filter by type: only the ticks.
	if err := do(ctx, chromedp.SetValue("#filter-type", "tick"), chromedp.Evaluate[chromedp.Void](`document.getElementById('filter-type').dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.querySelectorAll('#rows .row.event').length === 2 && [...document.querySelectorAll('#rows .row.event .c-type')].every(c => c.textContent === 'tick')`, 5*time.Second)

	// Drop the connection: the client reconnects with Last-Event-ID 5,
	// and the list says so.
	if err := do(ctx, chromedp.Click("#drop")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `window.ssekit.stats().conns === 2`, 10*time.Second)
	if err := do(ctx, chromedp.SetValue("#filter-type", ""), chromedp.Evaluate[chromedp.Void](`document.getElementById('filter-type').dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('rows').textContent.includes('Last-Event-ID "5"') && document.getElementById('rows').textContent.includes('reconnected')`, 5*time.Second)

	// Stop.
	if err := do(ctx, chromedp.Click("#stop")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('state').textContent === 'stopped'`, 5*time.Second)
}

// TestUILLM sends a POST with a JSON body and headers, typed in the
// editor, to an OpenAI-style stream and sees the assembled answer and the
// tool call.
func TestUILLM(t *testing.T) {
	ui := newUI(t)
	api := httptest.NewServer(chatAPI(t, 10*time.Millisecond))
	t.Cleanup(api.Close)
	ctx := browsertest.New(t)

	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.SetValue("#method", "POST"),
		chromedp.SendKeys("#url", api.URL+"/v1/chat/completions"),
		// Headers: one typed in the table, the token in the Auth tab.
		chromedp.Click(`button[data-tab="headers"]`),
		chromedp.Click("#add-header"),
		chromedp.SendKeys("#headers tr:last-child .k", "X-Org"),
		chromedp.SendKeys("#headers tr:last-child .v", "acme"),
		chromedp.Click(`button[data-tab="auth"]`),
		chromedp.SendKeys("#bearer", "sk-test"),
		chromedp.Click(`button[data-tab="body"]`),
		chromedp.SendKeys("#body", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"Say hello"}]}`),
		chromedp.Click("#format-body"),
	); err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text("#body-status"))
	if err != nil || !strings.Contains(status, "valid JSON") {
		t.Errorf("body status %q (%v); want valid JSON", status, err)
	}
	if err := do(ctx, chromedp.Click("#send")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('llm-text').textContent === 'Hello, world!' && document.getElementById('llm-finish').textContent.includes('tool_calls')`, 20*time.Second)
	tool, err := chromedp.Run(ctx, chromedp.Text("#llm-tools"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tool, "get_weather") || !strings.Contains(tool, `"city": "Paris"`) {
		t.Errorf("tool calls %q; want get_weather with city Paris", tool)
	}
	format, _ := chromedp.Run(ctx, chromedp.Text("#llm-format"))
	if format != "OpenAI chat" {
		t.Errorf("format %q; want OpenAI chat", format)
	}
}

// TestUICurl imports a curl command into the editor and copies it back.
func TestUICurl(t *testing.T) {
	ui := newUI(t)
	ctx := browsertest.New(t)
	const cmd = `curl -N https://api.example.com/v1/chat \
  -H 'Authorization: Bearer sk-1' -H "Content-Type: application/json" \
  -d '{"stream": true, "q": "it'\''s"}'`
	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.Click("#import-curl"),
		chromedp.SetValue("#curl-text", cmd),
		chromedp.Click("#curl-ok"),
	); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`window.ssekit.spec()`))
	if err != nil {
		t.Fatal(err)
	}
	if got["method"] != "POST" || got["url"] != "https://api.example.com/v1/chat" || got["body"] != `{"stream": true, "q": "it's"}` {
		t.Errorf("imported %v; want POST, the URL and the body", got)
	}
	headers := fmt.Sprint(got["headers"])
	if !strings.Contains(headers, "Bearer sk-1") || !strings.Contains(headers, "application/json") {
		t.Errorf("imported headers %s; want the bearer token and the Content-Type", headers)
	}
	back, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.ssekit.toCurl(window.ssekit.spec())`))
	if err != nil {
		t.Fatal(err)
	}
	again, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`window.ssekit.fromCurl(`+jsString(back)+`)`))
	if err != nil {
		t.Fatal(err)
	}
	if again["body"] != got["body"] || again["url"] != got["url"] || again["bearer"] != "sk-1" {
		t.Errorf("copy as curl %q does not import back to the same request: %v", back, again)
	}
}

// TestUILink reopens a request from the link the page puts in its address.
func TestUILink(t *testing.T) {
	ui := newUI(t)
	ctx := browsertest.New(t)
	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.SetValue("#method", "PUT"),
		chromedp.SendKeys("#url", "http://127.0.0.1:1/stream?x=1"),
		chromedp.Click(`button[data-tab="auth"]`),
		chromedp.SendKeys("#bearer", "secret"),
		chromedp.Click("#send"), // fails (nothing listens on port 1) but sets the link
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `location.hash.startsWith('#req=') && document.getElementById('state').textContent === 'error'`, 10*time.Second)
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil {
		t.Fatal(err)
	}
	ctx2 := browsertest.New(t)
	if err := do(ctx2, chromedp.Navigate(href), chromedp.WaitVisible("#url")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx2, chromedp.Evaluate[map[string]any](`window.ssekit.spec()`))
	if err != nil {
		t.Fatal(err)
	}
	if got["method"] != "PUT" || got["url"] != "http://127.0.0.1:1/stream?x=1" {
		t.Errorf("reopened %v; want PUT and the URL", got)
	}
	if strings.Contains(fmt.Sprint(got["headers"]), "secret") || strings.Contains(href, "secret") {
		t.Errorf("the link %s carries the bearer token", href)
	}
}

// do runs browser actions with a deadline, so that a selector that never
// matches fails the test instead of hanging it.
func do(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestUITokenLeavesTheAddress: in Chromium, the token that arrives in the
// address (?token= as printed, or #token= after a one-time code) is taken
// out of it once the page loaded, and the page still makes its calls.
func TestUITokenLeavesTheAddress(t *testing.T) {
	ui := debugger.New(debugger.Config{Token: testToken})
	srv := httptest.NewServer(ui)
	t.Cleanup(func() {
		ui.Close()
		srv.Close()
	})
	stream := httptest.NewServer(ticks(2, 10*time.Millisecond))
	t.Cleanup(stream.Close)
	for _, start := range []string{srv.URL + "/?token=" + testToken, ui.LoginURL(srv.URL)} {
		ctx := browsertest.New(t)
		if err := do(ctx, chromedp.Navigate(start), chromedp.WaitVisible("#url")); err != nil {
			t.Fatal(err)
		}
		href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(href, testToken) || strings.Contains(href, "code=") {
			t.Errorf("from %s: the address is still %q", start, href)
		}
		if err := do(ctx, chromedp.SendKeys("#url", stream.URL+"/events"), chromedp.Click("#send")); err != nil {
			t.Fatal(err)
		}
		browsertest.WaitFor(t, ctx, `document.querySelectorAll('#rows .row.event').length === 2`, 20*time.Second)
	}
}

// TestUILLMFixtures: the page assembles each made-up stream of
// testdata/llm in Chromium as its mock script serves it: OpenAI chat and
// Responses, Anthropic (thinking, tool use), Gemini, MCP's JSON-RPC
// messages, and, with rules typed in the LLM rules field, a JSON format
// of its own and an NDJSON stream; with the usage and timing.
func TestUILLMFixtures(t *testing.T) {
	ui := newUI(t)
	ctx := browsertest.New(t)
	for _, f := range llmtest.Load(t, "..") {
		t.Run(f.Script, func(t *testing.T) {
			m, spec := f.Serve(t)
			form, _ := json.Marshal(map[string]any{"method": spec.Method, "url": spec.URL, "headers": spec.Headers, "body": spec.Body})
			actions := []chromedp.Action[chromedp.Void]{
				chromedp.Navigate(ui.URL + "/?token=" + testToken + "#req=" + base64.RawURLEncoding.EncodeToString(form)),
				chromedp.WaitVisible("#url"),
			}
			var rules []byte
			if f.Rules != "" {
				var err error
				if rules, err = os.ReadFile(f.Path(f.Rules)); err != nil {
					t.Fatal(err)
				}
				actions = append(actions,
					chromedp.Click(`button[data-tab="rules"]`),
					chromedp.SetValue("#llm-rules", string(rules)),
					chromedp.Evaluate[chromedp.Void](`document.getElementById('llm-rules').dispatchEvent(new Event('input'))`))
			}
			if err := do(ctx, append(actions, chromedp.Click("#send"))...); err != nil {
				t.Fatal(err)
			}
			browsertest.WaitFor(t, ctx, `document.getElementById('state').textContent === 'ended' && window.ssekit.llmShown() && !document.getElementById('llm').hidden`, 20*time.Second)
			type shown struct {
				Format, Facts, Text, Reasoning string
				Tools                          [][3]string // name, id, arguments as JSON
				RPC                            []string
			}
			got, err := chromedp.Run(ctx, chromedp.Evaluate[shown](`(() => {
				const q = (s) => document.querySelector(s), all = (s) => [...document.querySelectorAll(s)];
				return {
					Format: q('#llm-format').textContent, Facts: q('#llm-finish').textContent,
					Text: q('#llm-text').textContent, Reasoning: q('#llm-reasoning').textContent,
					Tools: all('#llm-tools .tool').map((d) => [d.querySelector('b').textContent, d.querySelector('.hint').textContent, JSON.stringify(JSON.parse(d.querySelector('pre').textContent))]),
					RPC: all('#llm-tools .rpc b').map((b) => b.textContent),
				};
			})()`))
			if err != nil {
				t.Fatal(err)
			}
			w := f.Want
			if got.Format != w.Label || got.Text != w.Text || got.Reasoning != w.Reasoning {
				t.Errorf("format %q text %q reasoning %q; want %q %q %q", got.Format, got.Text, got.Reasoning, w.Label, w.Text, w.Reasoning)
			}
			var tools [][3]string
			for _, tc := range w.Tools {
				var args bytes.Buffer
				if err := json.Compact(&args, []byte(tc.Arguments)); err != nil {
					t.Fatal(err)
				}
				tools = append(tools, [3]string{tc.Name, tc.ID, args.String()})
			}
			if fmt.Sprint(got.Tools) != fmt.Sprint(tools) {
				t.Errorf("tool calls %q; want %q", got.Tools, tools)
			}
			if fmt.Sprint(got.RPC) != fmt.Sprint(w.RPC) {
				t.Errorf("JSON-RPC messages %q; want %q", got.RPC, w.RPC)
			}
			var facts []string
			if w.Finish != "" {
				facts = append(facts, "finished: "+w.Finish)
			}
			if u := w.Usage; u != (debugger.Usage{}) {
				facts = append(facts, fmt.Sprintf("usage: %d input, %d output tokens", u.InputTokens, u.OutputTokens), "first token after ", " tokens/s")
			}
			if w.RPC != nil {
				facts = append(facts, fmt.Sprintf("%d messages", len(w.RPC)))
			}
			for _, want := range facts {
				if !strings.Contains(got.Facts, want) {
					t.Errorf("the answer's facts %q lack %q", got.Facts, want)
				}
			}
			if f.Rules != "" { // the link in the address reopens the request with its rules
				href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
				if err != nil {
					t.Fatal(err)
				}
				if err := do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(href), chromedp.WaitVisible("#url")); err != nil {
					t.Fatal(err)
				}
				var want debugger.MergeRules
				if err := json.Unmarshal(rules, &want); err != nil {
					t.Fatal(err)
				}
				again, err := chromedp.Run(ctx, chromedp.Evaluate[debugger.MergeRules](`window.ssekit.spec().llmRules`))
				if err != nil || again != want {
					t.Errorf("the link reopens rules %+v (%v); want %+v", again, err, want)
				}
			}
			// A complete answer is not asked for again (reconnecting is on).
			if n := len(m.Mock.Served()); w.Format != debugger.FormatMCP && n != 1 {
				t.Errorf("the mock served %d requests; want 1", n)
			}
		})
	}
}

// TestUIRulesRefused: rules that are not a JSON object are refused in the
// page, before any request; a path outside the subset is refused by the
// server, and the page says why.
func TestUIRulesRefused(t *testing.T) {
	ui := newUI(t)
	ctx := browsertest.New(t)
	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.SendKeys("#url", "http://127.0.0.1:1/stream"),
		chromedp.Click(`button[data-tab="rules"]`),
		chromedp.SendKeys("#llm-rules", `{"text": `),
		chromedp.Click("#send"),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('toast').textContent.includes('not a JSON object') && document.getElementById('rules-status').textContent.includes('want a JSON object')`, 10*time.Second)
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.ssekit.records().length`)); err != nil || n != 0 {
		t.Errorf("%d records (%v); want no session", n, err)
	}
	if err := do(ctx,
		chromedp.SetValue("#llm-rules", `{"text": "out.piece"}`),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('llm-rules').dispatchEvent(new Event('input'))`),
		chromedp.Click("#send"),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('state').textContent === 'error' && document.getElementById('rows').textContent.includes('does not start with $')`, 10*time.Second)
}
