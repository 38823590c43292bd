package debugger

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssekit/sse"
)

// TestAssemblerFixtures assembles each made-up stream of testdata/llm
// (one per format: Gemini, OpenAI chat and Responses, Anthropic with
// thinking and tool use, MCP) and checks the answer, the tool calls, the
// usage and the timing.
func TestAssemblerFixtures(t *testing.T) {
	tests := []struct {
		file, format, text, reasoning, finish string
		tools                                 []ToolCall
		usage                                 Usage
		rpcs                                  int
	}{
		{file: "gemini.sse", format: FormatGemini, text: "Tomorrow in Lyon: sunny, 21 °C.", reasoning: "Checking the forecast.", finish: "STOP",
			tools: []ToolCall{{Index: 0, Name: "save_note", Arguments: `{"city":"Lyon","temp":21}`}}, usage: Usage{9, 12}},
		{file: "openai-chat.sse", format: FormatOpenAI, text: "Two words.", finish: "stop", usage: Usage{5, 3}},
		{file: "openai-responses.sse", format: FormatResponses, text: "Looking it up.",
			tools: []ToolCall{{Index: 1, ID: "call_9", Name: "search", Arguments: `{"q":"sse"}`}}, usage: Usage{14, 11}},
		{file: "anthropic-thinking.sse", format: FormatAnthropic, text: "Let me add.", reasoning: "The user wants a sum.", finish: "tool_use",
			tools: []ToolCall{{Index: 2, ID: "toolu_7", Name: "add", Arguments: `{"a":2,"b":3}`}}, usage: Usage{21, 30}},
		{file: "mcp.sse", format: FormatMCP, rpcs: 4},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "llm", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var a Assembler
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			at := start
			rpcs := 0
			for ev, err := range sse.NewDecoder(f).Events() {
				if err != nil {
					t.Fatal(err)
				}
				at = at.Add(100 * time.Millisecond)
				d, ok := a.FeedAt(&ev, at)
				if !ok {
					t.Errorf("event %q not recognised", ev.Data)
				}
				if d.RPC != nil {
					rpcs++
				}
			}
			if a.Format() != tt.format || a.Text() != tt.text || a.Reasoning() != tt.reasoning || a.Finish() != tt.finish {
				t.Errorf("format %q text %q reasoning %q finish %q; want %q %q %q %q", a.Format(), a.Text(), a.Reasoning(), a.Finish(), tt.format, tt.text, tt.reasoning, tt.finish)
			}
			if got := a.ToolCalls(); len(got) != len(tt.tools) || (len(got) > 0 && got[0] != tt.tools[0]) {
				t.Errorf("tool calls %+v; want %+v", got, tt.tools)
			}
			if a.Usage() != tt.usage {
				t.Errorf("usage %+v; want %+v", a.Usage(), tt.usage)
			}
			if rpcs != tt.rpcs {
				t.Errorf("%d JSON-RPC messages; want %d", rpcs, tt.rpcs)
			}
			timing, ok := a.Timing(start)
			if tt.format == FormatMCP {
				if ok {
					t.Errorf("an MCP stream has a first token: %+v", timing)
				}
				return
			}
			if !ok || timing.FirstToken <= 0 || timing.FirstToken > 300*time.Millisecond {
				t.Errorf("timing %+v, %v; want the first token within the first three events", timing, ok)
			}
			if tt.usage.OutputTokens > 1 && timing.TokensPerSec <= 0 {
				t.Errorf("tokens/s %v; want a rate from the reported output tokens", timing.TokensPerSec)
			}
		})
	}
}
