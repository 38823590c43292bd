package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListenLLMFormats: listen --llm assembles the made-up fixtures of
// debugger/testdata/llm (Gemini with thinking and a function call, MCP's
// JSON-RPC messages) and reports the usage and timing the stream gave.
func TestListenLLMFormats(t *testing.T) {
	tests := []struct {
		file           string
		stdout         []string // in order
		stderrContains []string
	}{
		{"gemini.sse", []string{"Checking the forecast.", "Tomorrow in Lyon: sunny, 21 °C.", "[tool call save_note]", `{"city":"Lyon","temp":21}`},
			[]string{"usage: 9 input, 12 output tokens", "first token after ", "tokens/s", "the model stopped: STOP"}},
		{"mcp.sse", []string{"→ notifications/progress", "→ request \"srv-1\" sampling/createMessage", "← result 7 {\"content\"", "← error 8 -32602 unknown tool"}, []string{`MCP session "sess-42"`}},
		{"anthropic-thinking.sse", []string{"The user wants a sum.", "Let me add.", "[tool call add] toolu_7", `{"a":2,"b":3}`},
			[]string{"usage: 21 input, 30 output tokens", "the model stopped: tool_use"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			wire, err := os.ReadFile(filepath.Join("..", "..", "debugger", "testdata", "llm", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Mcp-Session-Id", "sess-42")
				streamOf(string(wire)).ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			got := run(t, nil, "listen", "--llm", "--no-reconnect", srv.URL)
			rest := got.stdout
			for _, want := range tt.stdout {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order):\n%s", want, got.stdout)
				}
				rest = rest[i+len(want):]
			}
			for _, want := range tt.stderrContains {
				if !strings.Contains(got.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, got.stderr)
				}
			}
			if got.code != 0 {
				t.Errorf("exit code %d; want 0", got.code)
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

// TestListenLLMRules: --llm-rules assembles a made-up JSON format; a rule
// file with a bad path is refused with its reason.
func TestListenLLMRules(t *testing.T) {
	dir := filepath.Join("..", "..", "debugger", "testdata", "llm")
	wire, err := os.ReadFile(filepath.Join(dir, "custom.sse"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(streamOf(string(wire)))
	t.Cleanup(srv.Close)
	got := run(t, nil, "listen", "--llm-rules", filepath.Join(dir, "custom-rules.json"), "--no-reconnect", srv.URL)
	if want := "Bonjour\n[tool call translate]\n{\"to\":\"en\"}\n"; got.stdout != want {
		t.Errorf("stdout %q; want %q", got.stdout, want)
	}
	if !strings.Contains(got.stderr, "usage: 4 input, 6 output tokens") || !strings.HasSuffix(got.stderr, "the model stopped: complete\n") {
		t.Errorf("stderr %q; want the usage and the stop reason", got.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"text":"out.piece"}`), 0o600)
	got = run(t, nil, "listen", "--llm-rules", bad, srv.URL)
	if got.code != 1 || !strings.Contains(got.stderr, "does not start with $") {
		t.Errorf("bad rules: exit %d, stderr %q; want 1 and why", got.code, got.stderr)
	}
}
