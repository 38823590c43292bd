package debugger_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/internal/llmtest"
)

// rpcLine is how listen and the page name a JSON-RPC message.
func rpcLine(m *debugger.RPCMessage) string {
	switch {
	case m.Method != "" && m.ID != "":
		return "→ request " + m.ID + " " + m.Method
	case m.Method != "":
		return "→ notification " + m.Method
	case m.Error != nil:
		return "← error " + m.ID
	default:
		return "← result " + m.ID
	}
}

// TestAssemblerFixtures assembles each made-up stream of testdata/llm, as
// its mock script serves it to the request its route wants (one per
// format: Gemini, OpenAI chat and Responses, Anthropic with thinking and
// tool use, MCP, a format of its own read with merge rules, NDJSON), and
// checks the answer, the tool calls, the usage and the timing.
func TestAssemblerFixtures(t *testing.T) {
	for _, f := range llmtest.Load(t, "..") {
		t.Run(f.Script, func(t *testing.T) {
			m, spec := f.Serve(t)
			req, err := spec.NewRequest(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var hc *http.Client = m.Client()
			if f.NDJSON {
				hc = debugger.NDJSONClient(hc)
			}
			var a debugger.Assembler
			if spec.LLMRules != nil {
				if err := a.SetRules(spec.LLMRules); err != nil {
					t.Fatal(err)
				}
			}
			es := (&sse.Client{HTTPClient: hc, NoReconnect: true}).Connect(req)
			defer es.Close()
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			at := start
			var rpcs []string
			for {
				ev, err := es.Next()
				if err != nil {
					break
				}
				at = at.Add(100 * time.Millisecond)
				d, ok := a.FeedAt(&ev, at)
				if !ok && f.Rules == "" {
					t.Errorf("event %q not recognised", ev.Data)
				}
				if d.RPC != nil {
					rpcs = append(rpcs, rpcLine(d.RPC))
				}
			}
			w := f.Want
			if a.Format() != w.Format || a.Text() != w.Text || a.Reasoning() != w.Reasoning || a.Finish() != w.Finish {
				t.Errorf("format %q text %q reasoning %q finish %q; want %q %q %q %q", a.Format(), a.Text(), a.Reasoning(), a.Finish(), w.Format, w.Text, w.Reasoning, w.Finish)
			}
			got := a.ToolCalls()
			if len(got) != len(w.Tools) {
				t.Errorf("tool calls %+v; want %+v", got, w.Tools)
			}
			for i := range min(len(got), len(w.Tools)) {
				if got[i] != w.Tools[i] {
					t.Errorf("tool call %d: %+v; want %+v", i, got[i], w.Tools[i])
				}
			}
			if a.Usage() != w.Usage {
				t.Errorf("usage %+v; want %+v", a.Usage(), w.Usage)
			}
			if len(rpcs) != len(w.RPC) {
				t.Errorf("JSON-RPC messages %q; want %q", rpcs, w.RPC)
			}
			for i := range min(len(rpcs), len(w.RPC)) {
				if rpcs[i] != w.RPC[i] {
					t.Errorf("JSON-RPC message %d: %q; want %q", i, rpcs[i], w.RPC[i])
				}
			}
			timing, ok := a.Timing(start)
			if w.Format == debugger.FormatMCP {
				if ok {
					t.Errorf("an MCP stream has a first token: %+v", timing)
				}
				return
			}
			if !ok || timing.FirstToken <= 0 || timing.FirstToken > 500*time.Millisecond {
				t.Errorf("timing %+v, %v; want the first token within the first five events", timing, ok)
			}
			if w.Usage.OutputTokens > 1 && timing.TokensPerSec <= 0 {
				t.Errorf("tokens/s %v; want a rate from the reported output tokens", timing.TokensPerSec)
			}
		})
	}
}
