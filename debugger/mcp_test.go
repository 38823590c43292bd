package debugger_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/internal/browsertest"
	"github.com/ssekit/sse/internal/llmtest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/ssetest"
)

// mcpCall is the JSON-RPC request the MCP tests send: the tool call the
// made-up server of testdata/llm/mcp.mock answers.
const mcpCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"answer","arguments":{}}}`

// mcpFixture serves testdata/llm/mcp.mock.
func mcpFixture(t *testing.T) (*ssetest.Mock, string) {
	for _, f := range llmtest.Load(t, "..") {
		if f.Script == "mcp.mock" {
			m, spec := f.Serve(t)
			return m, spec.URL
		}
	}
	t.Fatal("no mcp.mock fixture")
	return nil, ""
}

// mcpWantServed is what the made-up server serves to a client that opens
// a session, sends the tool call, resumes it once broken and ends the
// session: each request after initialize matched on Mcp-Session-Id (none
// got the script's 400).
var mcpWantServed = []string{`POST 200 ""`, `POST 202 ""`, `POST 200 ""`, `GET 200 "2"`, `GET 204 "4"`, `DELETE 204 ""`}

func served(m *ssetest.Mock) string {
	var s []string
	for _, r := range m.Mock.Served() {
		s = append(s, fmt.Sprintf("%s %d %q", r.Method, r.Status, r.LastEventID))
	}
	return fmt.Sprint(s)
}

// TestMCPSession opens a session on the made-up MCP server with
// MCPInitialize and reads the tool call's stream, broken and resumed,
// through the session's client.
func TestMCPSession(t *testing.T) {
	m, url := mcpFixture(t)
	sess, err := debugger.MCPInitialize(t.Context(), m.Client(), &debugger.RequestSpec{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	if sess.ID != "sess-42" || sess.ProtocolVersion != "2025-06-18" || !strings.Contains(string(sess.Response), `"made-up-mcp"`) {
		t.Errorf("session %q, version %q, response %s", sess.ID, sess.ProtocolVersion, sess.Response)
	}
	req, err := (&debugger.RequestSpec{URL: url, Body: mcpCall}).NewRequest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	es := (&sse.Client{HTTPClient: sess.Client(m.Client())}).Connect(req)
	defer es.Close()
	var a debugger.Assembler
	var got []string
	for {
		ev, err := es.Next()
		if err != nil {
			if !debugger.CleanEnd(err) {
				t.Errorf("the stream ended with %v; want 204", err)
			}
			break
		}
		if d, ok := a.Feed(&ev); ok && d.RPC != nil {
			got = append(got, rpcLine(d.RPC))
		}
	}
	want := []string{"→ notification notifications/progress", `→ request "srv-1" sampling/createMessage`, "→ notification notifications/progress", "← result 7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("messages %q; want %q", got, want)
	}
	if err := sess.Close(t.Context(), m.Client()); err != nil {
		t.Error(err)
	}
	if got := served(m); got != fmt.Sprint(mcpWantServed) {
		t.Errorf("the mock served %s; want %q", got, mcpWantServed)
	}
}

// TestMCPJSONAnswer: a POST answered with JSON, not a stream, reads as one
// event; a JSON answer that is not JSON is refused.
func TestMCPJSONAnswer(t *testing.T) {
	m := ssetest.NewMock(t, `
route POST /mcp
match body ~ "initialize"
header Content-Type: application/json
header Mcp-Session-Id: s1
> {"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-03-26"}}
route POST /mcp
match body ~ "notifications/initialized"
status 202
route POST /mcp
match body ~ "tools/list"
match header Mcp-Session-Id: s1
match header Mcp-Protocol-Version: 2025-03-26
match header Accept: application/json, text/event-stream
header Content-Type: application/json
> {"jsonrpc":"2.0",
>  "id":3, "result":{"tools":[]}}
route POST /mcp
header Content-Type: application/json
> {not json
`)
	url := m.URL + "/mcp"
	sess, err := debugger.MCPInitialize(t.Context(), m.Client(), &debugger.RequestSpec{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ body, want string }{
		{`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, `{"jsonrpc":"2.0","id":3,"result":{"tools":[]}}`},
		{`{"jsonrpc":"2.0","id":4,"method":"other"}`, "not JSON"},
	} {
		req, _ := (&debugger.RequestSpec{URL: url, Body: tt.body}).NewRequest(t.Context())
		es := (&sse.Client{HTTPClient: sess.Client(m.Client()), NoReconnect: true}).Connect(req)
		ev, err := es.Next()
		es.Close()
		if got := ev.Data; got != tt.want && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: event %q, %v; want %q", tt.body, got, err, tt.want)
		}
	}
}

// TestUIMCPSession: with the MCP option, the page opens the session, sends
// the tool call in it, resumes the broken stream with a GET, shows each
// message as a request, a notification or a result, and ends the session.
func TestUIMCPSession(t *testing.T) {
	m, url := mcpFixture(t)
	ui := newUI(t)
	ctx := browsertest.New(t)
	if err := do(ctx,
		chromedp.Navigate(ui.URL+"/?token="+testToken),
		chromedp.WaitVisible("#url"),
		chromedp.SetValue("#method", "POST"),
		chromedp.SendKeys("#url", url),
		chromedp.Click(`button[data-tab="body"]`),
		chromedp.SetValue("#body", mcpCall),
		chromedp.Click(`button[data-tab="options"]`),
		chromedp.Click("#mcp"),
		chromedp.Click("#send"),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById('state').textContent === 'ended' && window.ssekit.llmShown() && !document.getElementById('llm').hidden`, 20*time.Second)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[][2]string](`[...document.querySelectorAll('#llm-tools .rpc')].map((d) => [d.className, d.querySelector('b').textContent])`))
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"rpc result", "← result 0"}, {"rpc notification", "→ notification notifications/progress"}, {"rpc request", `→ request "srv-1" sampling/createMessage`},
		{"rpc notification", "→ notification notifications/progress"}, {"rpc result", "← result 7"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("messages %q; want %q", got, want)
	}
	rows, err := chromedp.Run(ctx, chromedp.Text("#rows"))
	if err != nil || !strings.Contains(rows, `Last-Event-ID "2"`) {
		t.Errorf("the list %q (%v); want the resumption with Last-Event-ID \"2\"", rows, err)
	}
	poll.Until(t, "the session's DELETE", 10*time.Second, func() bool { return len(m.Mock.Served()) == len(mcpWantServed) })
	if got := served(m); got != fmt.Sprint(mcpWantServed) {
		t.Errorf("the mock served %s; want %q", got, mcpWantServed)
	}
}
