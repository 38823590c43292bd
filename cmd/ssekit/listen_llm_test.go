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
)

// TestListenLLMFixtures: listen --llm assembles each made-up stream of
// debugger/testdata/llm as its mock script serves it (Gemini, OpenAI chat
// and Responses, Anthropic with thinking and tool use, MCP's JSON-RPC
// messages, a format of its own with --llm-rules, NDJSON with --ndjson),
// and reports the usage, timing and stop reason the stream gave.
func TestListenLLMFixtures(t *testing.T) {
	for _, f := range llmtest.Load(t, "../..") {
		t.Run(f.Script, func(t *testing.T) {
			_, spec := f.Serve(t)
			args := []string{"listen", "--llm", "--no-reconnect", "-X", spec.Method}
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
			for name, c := range map[string]struct {
				out  string
				want []string
			}{"stdout": {got.stdout, stdout}, "stderr": {got.stderr, stderr}} {
				rest := c.out
				for _, want := range c.want {
					i := strings.Index(rest, want)
					if i < 0 {
						t.Fatalf("%s lacks %q (in order):\n%s", name, want, c.out)
					}
					rest = rest[i+len(want):]
				}
			}
			if got.code != 0 {
				t.Errorf("exit code %d; want 0\n%s", got.code, got.stderr)
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
