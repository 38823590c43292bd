package debugger

import (
	"encoding/json"
	"strings"

	"github.com/ssekit/sse"
)

// LLM stream formats an Assembler recognises.
const (
	FormatOpenAI    = "openai"    // chat completions: choices[].delta
	FormatResponses = "responses" // OpenAI Responses API: response.*.delta events
	FormatAnthropic = "anthropic" // Messages API: content_block_delta events
)

// An LLMDelta is what one event added to the assembled answer.
type LLMDelta struct {
	Format string `json:"format"`
	// Text is appended to the answer.
	Text string `json:"text,omitempty"`
	// Reasoning is appended to the model's visible reasoning (Anthropic
	// thinking_delta).
	Reasoning string `json:"reasoning,omitempty"`
	// Tool is set when the event started a tool call or added to its
	// arguments.
	Tool *ToolDelta `json:"tool,omitempty"`
	// Finish is the reason the model stopped (finish_reason, stop_reason),
	// when the event said it.
	Finish string `json:"finish,omitempty"`
	// Done is set by the stream's last event ([DONE], message_stop,
	// response.completed).
	Done bool `json:"done,omitempty"`
}

// A ToolDelta is a piece of one tool call.
type ToolDelta struct {
	Index int    `json:"index"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Args  string `json:"args,omitempty"` // appended to the arguments
}

// A ToolCall is a tool call assembled from its deltas.
type ToolCall struct {
	Index     int    `json:"index"`
	ID        string `json:"id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// An Assembler merges the token deltas of an LLM streaming API into the
// growing answer: OpenAI chat completions (choices[0].delta.content and
// delta.tool_calls[].function.arguments), the OpenAI Responses API
// (response.output_text.delta, response.function_call_arguments.delta) and
// Anthropic's Messages API (content_block_delta with text_delta,
// input_json_delta or thinking_delta). It is what both "ssekit listen --llm"
// and the debugger's page show. The zero Assembler is ready to use; it is
// not safe for concurrent use.
type Assembler struct {
	format    string
	text      strings.Builder
	reasoning strings.Builder
	tools     []ToolCall
	finish    string
	done      bool
}

// Format returns the recognised format, or "" before any delta.
func (a *Assembler) Format() string { return a.format }

// Text returns the answer assembled so far.
func (a *Assembler) Text() string { return a.text.String() }

// Reasoning returns the reasoning assembled so far.
func (a *Assembler) Reasoning() string { return a.reasoning.String() }

// ToolCalls returns the tool calls assembled so far, in the order they
// started.
func (a *Assembler) ToolCalls() []ToolCall { return append([]ToolCall(nil), a.tools...) }

// Finish returns the stop reason, once the stream gave one.
func (a *Assembler) Finish() string { return a.finish }

// Done reports whether the stream's end marker arrived.
func (a *Assembler) Done() bool { return a.done }

// Feed adds one event. It reports false when the event is not part of a
// recognised LLM stream (or adds nothing to it).
func (a *Assembler) Feed(ev *sse.Event) (LLMDelta, bool) {
	d, ok := parseDelta(ev)
	if !ok {
		return LLMDelta{}, false
	}
	if a.format == "" {
		a.format = d.Format
	}
	a.text.WriteString(d.Text)
	a.reasoning.WriteString(d.Reasoning)
	if d.Tool != nil {
		a.tool(*d.Tool)
	}
	if d.Finish != "" {
		a.finish = d.Finish
	}
	if d.Done {
		a.done = true
	}
	return d, true
}

func (a *Assembler) tool(t ToolDelta) {
	for i := range a.tools {
		if a.tools[i].Index == t.Index {
			c := &a.tools[i]
			if t.ID != "" {
				c.ID = t.ID
			}
			if t.Name != "" {
				c.Name = t.Name
			}
			c.Arguments += t.Args
			return
		}
	}
	a.tools = append(a.tools, ToolCall{Index: t.Index, ID: t.ID, Name: t.Name, Arguments: t.Args})
}

// llmChunk holds the fields of every recognised format; a chunk fills the
// ones of its own.
type llmChunk struct {
	// OpenAI chat completions.
	Object  string `json:"object"`
	Choices []struct {
		Index int `json:"index"`
		Delta *struct {
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    int    `json:"index"`
				ID       string `json:"id"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`

	// Anthropic Messages and the OpenAI Responses API.
	Type  string          `json:"type"`
	Index int             `json:"index"`
	Delta json.RawMessage `json:"delta"`

	// Anthropic.
	ContentBlock *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"content_block"`

	// OpenAI Responses API.
	OutputIndex int `json:"output_index"`
	Item        *struct {
		Type   string `json:"type"`
		CallID string `json:"call_id"`
		Name   string `json:"name"`
	} `json:"item"`
}

// anthropicDelta is the delta of a content_block_delta or message_delta.
type anthropicDelta struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	PartialJSON string `json:"partial_json"`
	Thinking    string `json:"thinking"`
	StopReason  string `json:"stop_reason"`
}

// parseDelta recognises one event of an LLM stream.
func parseDelta(ev *sse.Event) (LLMDelta, bool) {
	data := strings.TrimSpace(ev.Data)
	if data == "[DONE]" {
		return LLMDelta{Format: FormatOpenAI, Done: true}, true
	}
	if !strings.HasPrefix(data, "{") {
		return LLMDelta{}, false
	}
	var c llmChunk
	if json.Unmarshal([]byte(data), &c) != nil {
		return LLMDelta{}, false
	}
	typ := c.Type
	if typ == "" {
		typ = ev.Type
	}
	switch {
	case len(c.Choices) > 0 || c.Object == "chat.completion.chunk":
		d := LLMDelta{Format: FormatOpenAI}
		for _, ch := range c.Choices {
			if ch.Index != 0 { // n > 1: the first answer only
				continue
			}
			if ch.FinishReason != nil {
				d.Finish = *ch.FinishReason
			}
			if ch.Delta == nil {
				continue
			}
			if ch.Delta.Content != nil {
				d.Text += *ch.Delta.Content
			}
			for _, tc := range ch.Delta.ToolCalls { // one per chunk in practice
				d.Tool = &ToolDelta{Index: tc.Index, ID: tc.ID, Name: tc.Function.Name, Args: tc.Function.Arguments}
			}
		}
		return d, true
	case typ == "content_block_start" && c.ContentBlock != nil:
		d := LLMDelta{Format: FormatAnthropic}
		if c.ContentBlock.Type == "tool_use" {
			d.Tool = &ToolDelta{Index: c.Index, ID: c.ContentBlock.ID, Name: c.ContentBlock.Name}
		}
		return d, true
	case typ == "content_block_delta" || typ == "message_delta":
		var ad anthropicDelta
		if json.Unmarshal(c.Delta, &ad) != nil {
			return LLMDelta{}, false
		}
		d := LLMDelta{Format: FormatAnthropic, Finish: ad.StopReason}
		switch ad.Type {
		case "text_delta":
			d.Text = ad.Text
		case "thinking_delta":
			d.Reasoning = ad.Thinking
		case "input_json_delta":
			d.Tool = &ToolDelta{Index: c.Index, Args: ad.PartialJSON}
		}
		return d, true
	case typ == "message_start" || typ == "content_block_stop" || typ == "ping":
		return LLMDelta{Format: FormatAnthropic}, true
	case typ == "message_stop":
		return LLMDelta{Format: FormatAnthropic, Done: true}, true
	case typ == "response.output_text.delta" || typ == "response.function_call_arguments.delta":
		var s string
		if json.Unmarshal(c.Delta, &s) != nil {
			return LLMDelta{}, false
		}
		d := LLMDelta{Format: FormatResponses}
		if typ == "response.output_text.delta" {
			d.Text = s
		} else {
			d.Tool = &ToolDelta{Index: c.OutputIndex, Args: s}
		}
		return d, true
	case typ == "response.output_item.added" && c.Item != nil && c.Item.Type == "function_call":
		return LLMDelta{Format: FormatResponses, Tool: &ToolDelta{Index: c.OutputIndex, ID: c.Item.CallID, Name: c.Item.Name}}, true
	case typ == "response.completed":
		return LLMDelta{Format: FormatResponses, Done: true}, true
	}
	return LLMDelta{}, false
}
