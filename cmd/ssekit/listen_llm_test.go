package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/internal/llmtest"
	"github.com/ssekit/sse/ssetest"
)

// TestListenLLMFixtures: listen --llm assembles each made-up stream of
// debugger/testdata/llm as its mock script serves it (Gemini, OpenAI chat
// and Responses, Anthropic with thinking and tool use, MCP's JSON-RPC
// messages, a format of its own with --llm-rules, NDJSON with --ndjson),
// and reports the usage, timing and stop reason the stream gave.
func TestListenLLMFixtures(t *testing.T) {
	for _, f := range llmtest.Load(t, "../..") {
		t.Run(f.Script, func(t *testing.T) {
			m, spec := f.Serve(t)
			args := []string{"listen", "--llm", "-X", spec.Method}
			for _, h := range spec.Headers {
				args = append(args, "-H", h.Name+": "+h.Value)
			}
			if spec.Body != "" {
				args = append(args, "-d", spec.Body)
			}
			if f.Rules != "" {
				args = append(args, "--llm-rules", f.Path(f.Rules))
			}
			if f.NDJSON {
				args = append(args, "--ndjson")
			}
			got := run(t, nil, append(args, spec.URL)...)
			w := f.Want
			var stdout, stderr []string // in order
			if w.Reasoning != "" {
				stdout = append(stdout, w.Reasoning)
			}
			if w.Text != "" {
				stdout = append(stdout, w.Text)
			}
			for _, tc := range w.Tools {
				stdout = append(stdout, strings.TrimSpace("[tool call "+tc.Name+"] "+tc.ID)+"\n"+tc.Arguments)
			}
			stdout = append(stdout, w.RPC...)
			if u := w.Usage; u != (debugger.Usage{}) {
				stderr = append(stderr, fmt.Sprintf("usage: %d input, %d output tokens", u.InputTokens, u.OutputTokens), "first token after ", "tokens/s")
			}
			if w.Finish != "" {
				stderr = append(stderr, "the model stopped: "+w.Finish)
			}
			inOrder(t, "stdout", got.stdout, stdout)
			inOrder(t, "stderr", got.stderr, stderr)
			if got.code != 0 {
				t.Errorf("exit code %d; want 0\n%s", got.code, got.stderr)
			}
			// A complete answer is not asked for again; an MCP stream
			// resumes after its last event (and is told 204).
			wantServed := 1
			if w.Format == debugger.FormatMCP {
				wantServed = 2
			} else if !strings.Contains(got.stderr, debugger.ReasonAnswered) {
				t.Errorf("stderr lacks %q:\n%s", debugger.ReasonAnswered, got.stderr)
			}
			if n := len(m.Mock.Served()); n != wantServed {
				t.Errorf("the mock served %d requests; want %d", n, wantServed)
			}
		})
	}
}

// TestListenNDJSON: with --ndjson an NDJSON response is shown line by line
// as events (--json gives one object per line); without it the contract's
// Content-Type failure holds.
func TestListenNDJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, "{\"message\":{\"content\":\"Hel\"},\"done\":false}\n{\"message\":{\"content\":\"lo\"},\"done\":true}\n")
	}))
	t.Cleanup(srv.Close)
	got := run(t, nil, "listen", "--ndjson", "--json", "--no-reconnect", srv.URL)
	want := `{"type":"message","data":"{\"message\":{\"content\":\"Hel\"},\"done\":false}","id":""}` + "\n" +
		`{"type":"message","data":"{\"message\":{\"content\":\"lo\"},\"done\":true}","id":""}` + "\n"
	if got.stdout != want || got.code != 0 {
		t.Errorf("--ndjson: exit %d, stdout\n%s\nwant\n%s", got.code, got.stdout, want)
	}
	if !strings.Contains(got.stderr, "application/x-ndjson: each line shown as an event") {
		t.Errorf("stderr %q; want the conversion said", got.stderr)
	}
	got = run(t, nil, "listen", "--no-reconnect", srv.URL)
	if got.code != 1 || !strings.Contains(got.stderr, `Content-Type is "application/x-ndjson"; want text/event-stream`) {
		t.Errorf("without --ndjson: exit %d, stderr %q; want 1 and the Content-Type", got.code, got.stderr)
	}
}

// inOrder fails the test unless out holds each of want, in order.
func inOrder(t *testing.T, name, out string, want []string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%s lacks %q (in order):\n%s", name, w, out)
		}
		rest = rest[i+len(w):]
	}
}

// TestListenLLMRulesRefused: a rule file with a bad path is refused with
// its reason.
func TestListenLLMRulesRefused(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"text":"out.piece"}`), 0o600)
	got := run(t, nil, "listen", "--llm-rules", bad, "http://127.0.0.1:1/")
	if got.code != 1 || !strings.Contains(got.stderr, "does not start with $") {
		t.Errorf("bad rules: exit %d, stderr %q; want 1 and why", got.code, got.stderr)
	}
}

// mcpCall is the JSON-RPC request the MCP tests send: the fixture's tool
// call.
const mcpCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"answer","arguments":{}}}`

// TestListenMCP: listen --mcp opens a session on the made-up MCP server of
// debugger/testdata/llm/mcp.mock (initialize; the Mcp-Session-Id it gives
// sent on every later request, which the script requires), POSTs a tool
// call whose stream breaks, resumes it with a GET and Last-Event-ID, shows
// requests and notifications apart, and ends the session with DELETE.
func TestListenMCP(t *testing.T) {
	var f llmtest.Fixture
	for _, x := range llmtest.Load(t, "../..") {
		if x.Script == "mcp.mock" {
			f = x
		}
	}
	m, spec := f.Serve(t)
	got := run(t, nil, "listen", "--mcp", "-d", mcpCall, spec.URL)
	want := []string{
		`← result 0 {"protocolVersion":"2025-06-18"`,
		"→ notification notifications/progress",
		`→ request "srv-1" sampling/createMessage`,
		"→ notification notifications/progress",
		`← result 7 {"content":[{"type":"text","text":"42"}]`,
	}
	inOrder(t, "stdout", got.stdout, want)
	for _, w := range []string{`MCP session "sess-42" opened (protocol 2025-06-18)`, `with Last-Event-ID "2"`} {
		if !strings.Contains(got.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, got.stderr)
		}
	}
	if got.code != 0 {
		t.Errorf("exit code %d; want 0\n%s", got.code, got.stderr)
	}
	var served []string
	for _, s := range m.Mock.Served() {
		served = append(served, fmt.Sprintf("%s %d %q", s.Method, s.Status, s.LastEventID))
	}
	// Every request after initialize was matched on the session header:
	// none got the script's 400.
	wantServed := []string{`POST 200 ""`, `POST 202 ""`, `POST 200 ""`, `GET 200 "2"`, `GET 204 "4"`, `DELETE 204 ""`}
	if fmt.Sprint(served) != fmt.Sprint(wantServed) {
		t.Errorf("the mock served %q; want %q", served, wantServed)
	}
}

// TestListenMCPRefused: a server that refuses initialize, or does not
// speak MCP, ends listen --mcp with exit 1 and why.
func TestListenMCPRefused(t *testing.T) {
	tests := []struct{ name, script, want string }{
		{"a status", "status 401\nheader Content-Type: text/plain\n> no token\n", "MCP: initialize: 401 Unauthorized: no token"},
		{"an error", "header Content-Type: application/json\n> {\"jsonrpc\":\"2.0\",\"id\":0,\"error\":{\"code\":-32602,\"message\":\"unsupported version\"}}\n", "MCP: initialize: error -32602 unsupported version"},
		{"not MCP", "> data: hello\n>\n", "MCP: initialize: the stream ended without the response"},
		{"too long", "bigevent 2MiB\n", "MCP: initialize: more than 1048576 bytes without the response"},
		{"too long JSON", "header Content-Type: application/json\nbigevent 2MiB\n", "MCP: initialize: more than 1048576 bytes without the response"},
		{"a refused initialized", "route POST *\nmatch body ~ notifications/initialized\nstatus 400\nheader Content-Type: text/plain\n> bad\nroute POST *\nheader Content-Type: application/json\n> {\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}\n", "MCP: notifications/initialized: 400 Bad Request: bad"},
		{"a long session id", "header Content-Type: application/json\nheader Mcp-Session-Id: " + strings.Repeat("x", 1025) + "\n> {\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}\n", "is longer than 1024 bytes"},
		{"a bad session id", "header Content-Type: application/json\nheader Mcp-Session-Id: a b\n> {\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}\n", "is not visible ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ssetest.NewMock(t, tt.script)
			got := run(t, nil, "listen", "--mcp", m.URL+"/mcp")
			if got.code != 1 || !strings.Contains(got.stderr, tt.want) || strings.Count(got.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 1 and one line with %q", got.code, got.stderr, tt.want)
			}
		})
	}
}

// TestListenMCPTimeout: a server that never answers initialize is given
// up on at --timeout, with exit status 124.
func TestListenMCPTimeout(t *testing.T) {
	m := ssetest.NewMock(t, "hold\n")
	got := run(t, nil, "listen", "--mcp", "--timeout", "200ms", m.URL+"/mcp")
	if got.code != exitTimeout || !strings.Contains(got.stderr, "timed out after 200ms opening the MCP session") {
		t.Errorf("exit %d, stderr %q; want %d and the timeout", got.code, got.stderr, exitTimeout)
	}
}
