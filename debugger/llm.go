package debugger

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/ssekit/sse"
)

// LLM stream formats an Assembler recognises.
const (
	FormatOpenAI    = "openai"    // chat completions: choices[].delta
	FormatResponses = "responses" // OpenAI Responses API: response.*.delta events
	FormatAnthropic = "anthropic" // Messages API: content_block_delta events
	FormatGemini    = "gemini"    // streamGenerateContent?alt=sse: candidates[].content.parts[]
	FormatMCP       = "mcp"       // MCP Streamable HTTP: JSON-RPC 2.0 messages over SSE
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
	// Usage is the token counts the event reported, when it did.
	Usage *Usage `json:"usage,omitempty"`
	// RPC is the JSON-RPC message of an MCP stream (FormatMCP).
	RPC *RPCMessage `json:"rpc,omitempty"`
}

// Usage is what a stream reported it cost, in tokens. A count the stream
// did not report is zero.
type Usage struct {
	InputTokens  int `json:"inputTokens,omitempty"`
	OutputTokens int `json:"outputTokens,omitempty"`
}

// An RPCMessage is one JSON-RPC 2.0 message of an MCP Streamable HTTP
// stream: a request or notification (Method set), or a response (Result
// or Error set) to the request with ID.
type RPCMessage struct {
	ID     string          `json:"id,omitempty"` // the raw JSON id: 1 or "a"
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *RPCError       `json:"error,omitempty"`
}

// An RPCError is the error of a JSON-RPC response.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
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
// input_json_delta or thinking_delta), Gemini's streamGenerateContent
// (candidates[0].content.parts[]: text, thought, functionCall) and the
// JSON-RPC messages of MCP's Streamable HTTP; with the token usage the
// stream reports and, fed with FeedAt, the answer's timing. It is what
// both "ssekit listen --llm" and the debugger's page show. The zero Assembler is ready to use; it is
// not safe for concurrent use.
type Assembler struct {
	format    string
	text      strings.Builder
	reasoning strings.Builder
	tools     []ToolCall
	finish    string
	done      bool
	usage     Usage
	rules     map[string][]pathStep // SetRules; nil: the known formats
	// Set by FeedAt: when the first and the last piece of the answer
	// (text, reasoning or tool arguments) arrived.
	first, last time.Time
}

// Usage returns the token counts reported so far (the latest report of
// each count wins: streams report totals, not increments).
func (a *Assembler) Usage() Usage { return a.usage }

// Timing is the pace of an answer: when its first token came after start
// (the request, usually), and the output tokens per second from then to
// the last token, when the stream reported its output tokens.
type Timing struct {
	FirstToken   time.Duration
	TokensPerSec float64 // 0 when not reported or too few to tell
}

// Timing returns the answer's pace relative to start; ok is false before
// FeedAt saw a token.
func (a *Assembler) Timing(start time.Time) (t Timing, ok bool) {
	if a.first.IsZero() {
		return Timing{}, false
	}
	t.FirstToken = a.first.Sub(start)
	if span := a.last.Sub(a.first); span > 0 && a.usage.OutputTokens > 1 {
		t.TokensPerSec = float64(a.usage.OutputTokens-1) / span.Seconds()
	}
	return t, true
}

// FeedAt is Feed for an event that arrived at at, for Timing.
func (a *Assembler) FeedAt(ev *sse.Event, at time.Time) (LLMDelta, bool) {
	d, ok := a.Feed(ev)
	if ok && (d.Text != "" || d.Reasoning != "" || (d.Tool != nil && d.Tool.Args != "")) {
		if a.first.IsZero() {
			a.first = at
		}
		a.last = at
	}
	return d, ok
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
	var (
		d  LLMDelta
		ok bool
	)
	if a.rules != nil {
		d, ok = ruleDelta(a.rules, ev)
	} else {
		d, ok = parseDelta(ev)
	}
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
	if u := d.Usage; u != nil {
		if u.InputTokens > 0 {
			a.usage.InputTokens = u.InputTokens
		}
		if u.OutputTokens > 0 {
			a.usage.OutputTokens = u.OutputTokens
		}
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
	// OpenAI chat completions (usage on the last chunk with
	// stream_options.include_usage).
	Object string `json:"object"`
	Usage  *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		InputTokens      int `json:"input_tokens"`  // Anthropic message_delta
		OutputTokens     int `json:"output_tokens"` // Anthropic message_delta
	} `json:"usage"`
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

	// Anthropic (message_start carries the input tokens).
	Message *struct {
		Usage *struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	} `json:"message"`
	ContentBlock *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"content_block"`

	// OpenAI Responses API (response.completed carries the usage).
	Response *struct {
		Usage *struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	} `json:"response"`
	OutputIndex int `json:"output_index"`
	Item        *struct {
		Type   string `json:"type"`
		CallID string `json:"call_id"`
		Name   string `json:"name"`
	} `json:"item"`

	// Gemini: streamGenerateContent?alt=sse.
	Candidates []struct {
		Index   int `json:"index"`
		Content *struct {
			Parts []struct {
				Text         string `json:"text"`
				Thought      bool   `json:"thought"`
				FunctionCall *struct {
					ID   string          `json:"id"`
					Name string          `json:"name"`
					Args json.RawMessage `json:"args"`
				} `json:"functionCall"`
			} `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
	} `json:"candidates"`
	UsageMetadata *struct {
		PromptTokenCount     int `json:"promptTokenCount"`
		CandidatesTokenCount int `json:"candidatesTokenCount"`
	} `json:"usageMetadata"`

	// MCP: JSON-RPC 2.0.
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   *RPCError       `json:"error"`
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
	case c.JSONRPC == "2.0":
		m := &RPCMessage{Method: c.Method, Params: c.Params, Result: c.Result, Error: c.Error}
		if len(c.ID) > 0 && string(c.ID) != "null" {
			m.ID = string(c.ID)
		}
		return LLMDelta{Format: FormatMCP, RPC: m}, true
	case len(c.Candidates) > 0 || c.UsageMetadata != nil:
		d := LLMDelta{Format: FormatGemini}
		if u := c.UsageMetadata; u != nil {
			d.Usage = &Usage{InputTokens: u.PromptTokenCount, OutputTokens: u.CandidatesTokenCount}
		}
		tools := 0
		for _, cand := range c.Candidates {
			if cand.Index != 0 { // candidateCount > 1: the first answer only
				continue
			}
			d.Finish = cand.FinishReason
			if cand.Content == nil {
				continue
			}
			for _, p := range cand.Content.Parts {
				switch {
				case p.FunctionCall != nil: // whole, not in pieces
					d.Tool = &ToolDelta{Index: tools, ID: p.FunctionCall.ID, Name: p.FunctionCall.Name, Args: string(p.FunctionCall.Args)}
					tools++
				case p.Thought:
					d.Reasoning += p.Text
				default:
					d.Text += p.Text
				}
			}
		}
		return d, true
	case len(c.Choices) > 0 || c.Object == "chat.completion.chunk":
		d := LLMDelta{Format: FormatOpenAI}
		if u := c.Usage; u != nil {
			d.Usage = &Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
		}
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
		if u := c.Usage; u != nil && typ == "message_delta" {
			d.Usage = &Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens}
		}
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
		d := LLMDelta{Format: FormatAnthropic}
		if c.Message != nil && c.Message.Usage != nil {
			d.Usage = &Usage{InputTokens: c.Message.Usage.InputTokens, OutputTokens: c.Message.Usage.OutputTokens}
		}
		return d, true
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
		d := LLMDelta{Format: FormatResponses, Done: true}
		if c.Response != nil && c.Response.Usage != nil {
			d.Usage = &Usage{InputTokens: c.Response.Usage.InputTokens, OutputTokens: c.Response.Usage.OutputTokens}
		}
		return d, true
	case strings.HasPrefix(typ, "response."): // created, in_progress, content_part.added…: nothing to add
		return LLMDelta{Format: FormatResponses}, true
	}
	return LLMDelta{}, false
}
