package main

import (
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
		{"mcp.sse", []string{"→ notifications/progress", "→ request \"srv-1\" sampling/createMessage", "← result 7 {\"content\"", "← error 8 -32602 unknown tool"}, nil},
		{"anthropic-thinking.sse", []string{"The user wants a sum.", "Let me add.", "[tool call add] toolu_7", `{"a":2,"b":3}`},
			[]string{"usage: 21 input, 30 output tokens", "the model stopped: tool_use"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			wire, err := os.ReadFile(filepath.Join("..", "..", "debugger", "testdata", "llm", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(streamOf(string(wire)))
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
