// Package term is the debugger's presentation on a terminal: the output of
// "ssekit listen" (event blocks, JSON lines, raw reads, the assembled LLM
// answer) and the report of "ssekit lint". Everything a server sent
// (event fields, status lines, headers, error bodies) goes through
// Sanitize before it reaches the terminal, so no server can move the
// cursor, recolour the screen or retitle the window.
package term

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/debugger"
)

// A Mode is what a Printer prints.
type Mode int

// Modes of a Printer.
const (
	Blocks Mode = iota // one block per event, for people
	JSON               // one JSON object per event: the listen --json contract
	Raw                // the body's reads as received
	LLM                // the answer assembled from an LLM stream's deltas
)

// ANSI styles of the human output.
const (
	styleDim   = "\x1b[2m"
	styleType  = "\x1b[1;36m"
	styleID    = "\x1b[33m"
	styleRetry = "\x1b[35m"
	styleBold  = "\x1b[1m"
	styleError = "\x1b[1;31m"
	styleInfo  = "\x1b[36m"
	styleReset = "\x1b[0m"
)

// A Printer writes a stream to a terminal or a pipe. Each event is one
// Write, so a reader of a pipe sees it whole and at once. Its methods are
// called from one goroutine.
type Printer struct {
	w     io.Writer
	mode  Mode
	color bool
	llm   *debugger.Assembler

	chunks  int
	lastEnd byte      // the last byte written by Raw or LLM output
	tools   int       // tool calls announced by the LLM output
	prev    time.Time // the previous event, or the connection
	start   time.Time // the first connection
	buf     bytes.Buffer
}

// NewPrinter returns a Printer of mode on w, with ANSI colours when color
// is set.
func NewPrinter(w io.Writer, mode Mode, color bool) *Printer {
	p := &Printer{w: w, mode: mode, color: color}
	if mode == LLM {
		p.llm = &debugger.Assembler{}
	}
	return p
}

// Assembler returns the LLM output's Assembler (nil in other modes), to
// give it merge rules.
func (p *Printer) Assembler() *debugger.Assembler { return p.llm }

// Mode returns what p prints.
func (p *Printer) Mode() Mode { return p.mode }

// jsonEvent is the --json line: the DESIGN.md contract.
type jsonEvent struct {
	Type  string `json:"type"`
	Data  string `json:"data"`
	ID    string `json:"id"`
	Retry *int64 `json:"retry,omitempty"`
}

// Connected notes when a connection opened: the first event's gap is the
// time it took to arrive.
func (p *Printer) Connected(at time.Time) {
	if p.prev.IsZero() {
		p.prev = at
	}
	if p.start.IsZero() {
		p.start = at
	}
}

// Event prints an event that arrived at at.
func (p *Printer) Event(ev *sse.Event, at time.Time) error {
	p.buf.Reset()
	switch p.mode {
	case Raw:
		p.prev = at
		return nil
	case LLM:
		p.prev = at
		return p.llmDelta(ev, at)
	case JSON:
		je := jsonEvent{Type: ev.Type, Data: ev.Data, ID: ev.ID}
		if ev.HasRetry {
			ms := ev.Retry.Milliseconds()
			je.Retry = &ms
		}
		enc := json.NewEncoder(&p.buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(je); err != nil {
			return err
		}
	default:
		gap := time.Duration(0)
		if !p.prev.IsZero() {
			gap = at.Sub(p.prev)
		}
		p.style(styleDim, at.Format("15:04:05.000")+"  +"+FormatGap(gap))
		p.buf.WriteString("  ")
		p.style(styleType, Sanitize(ev.Type))
		if ev.ID != "" {
			p.buf.WriteString("  ")
			p.style(styleID, "id="+Sanitize(ev.ID))
		}
		if ev.HasRetry {
			p.buf.WriteString("  ")
			p.style(styleRetry, "retry="+strconv.FormatInt(ev.Retry.Milliseconds(), 10)+"ms")
		}
		p.buf.WriteByte('\n')
		if ev.Data == "" {
			p.buf.WriteString("  ")
			p.style(styleDim, "(empty data)")
			p.buf.WriteByte('\n')
		} else {
			for line := range strings.SplitSeq(prettyJSON(ev.Data), "\n") {
				p.buf.WriteString("  ")
				p.buf.WriteString(Sanitize(line))
				p.buf.WriteByte('\n')
			}
		}
		p.buf.WriteByte('\n')
	}
	p.prev = at
	_, err := p.w.Write(p.buf.Bytes())
	return err
}

// Comment shows a comment line (a heartbeat, usually) in the Blocks
// output; the other modes have none.
func (p *Printer) Comment(text string, at time.Time) {
	if p.mode != Blocks {
		return
	}
	p.buf.Reset()
	p.style(styleDim, at.Format("15:04:05.000")+"  :"+Sanitize(text))
	p.buf.WriteString("\n\n")
	p.w.Write(p.buf.Bytes())
}

func (p *Printer) style(style, text string) {
	p.buf.WriteString(colored(p.color, style, text))
}

func colored(color bool, style, text string) string {
	if !color {
		return text
	}
	return style + text + styleReset
}

// FormatGap rounds a gap to what a person reads: milliseconds, or
// microseconds below one.
func FormatGap(d time.Duration) string {
	if d > 0 && d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// prettyJSON indents data that is a JSON object or array; other data is
// returned as is.
func prettyJSON(data string) string {
	t := strings.TrimSpace(data)
	if t == "" || (t[0] != '{' && t[0] != '[') || !json.Valid([]byte(t)) {
		return data
	}
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(t), "", "  "); err != nil {
		return data
	}
	return b.String()
}

// Sanitize makes control characters visible (\x1b, \u009b) so that text
// from a server cannot move the cursor or recolour the terminal; tabs
// stay.
func Sanitize(s string) string {
	clean := true
	for _, r := range s {
		if isControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case !isControl(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\t') || (r >= 0x7f && r < 0xa0)
}

// SanitizeText is Sanitize for flowing text: newlines stay.
func SanitizeText(s string) string {
	if !strings.ContainsAny(s, "\n") {
		return Sanitize(s)
	}
	parts := strings.Split(s, "\n")
	for i := range parts {
		parts[i] = Sanitize(parts[i])
	}
	return strings.Join(parts, "\n")
}

// Plural says "1 event", "2 events".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// Truncate cuts s to at most n bytes, without splitting a UTF-8 sequence,
// and marks the cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// Chunk prints one read of the body (Raw): a marker line with its number,
// size and arrival, then its bytes with line ends shown (\r, \n) and other
// control characters escaped, so that where the server's writes (or a
// proxy's buffering) cut the stream is visible.
func (p *Printer) Chunk(b []byte, at time.Time) {
	if p.mode != Raw {
		return
	}
	p.chunks++
	p.buf.Reset()
	if p.lastEnd != '\n' && p.chunks > 1 {
		p.buf.WriteByte('\n')
	}
	gap := time.Duration(0)
	if !p.prev.IsZero() {
		gap = at.Sub(p.prev)
	}
	p.prev = at
	p.style(styleDim, fmt.Sprintf("── read %d · %s · %s +%s ──", p.chunks, Plural(len(b), "byte"), at.Format("15:04:05.000"), FormatGap(gap)))
	p.buf.WriteByte('\n')
	for _, line := range splitAfterLineEnds(b) {
		body := strings.TrimRight(line, "\r\n")
		p.buf.WriteString(Sanitize(body))
		end := line[len(body):]
		if end != "" {
			p.style(styleRetry, strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(end))
			p.buf.WriteByte('\n')
		}
	}
	if n := p.buf.Len(); n > 0 {
		p.lastEnd = p.buf.Bytes()[n-1]
	}
	p.w.Write(p.buf.Bytes())
}

// splitAfterLineEnds cuts b after each LF, CRLF or lone CR.
func splitAfterLineEnds(b []byte) []string {
	var lines []string
	start := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\n':
			lines = append(lines, string(b[start:i+1]))
			start = i + 1
		case '\r':
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			lines = append(lines, string(b[start:i+1]))
			start = i + 1
		}
	}
	if start < len(b) {
		lines = append(lines, string(b[start:]))
	}
	return lines
}

// llmDelta prints what an event added to an LLM answer: text as is, as it
// arrives, and each tool call on a line of its own followed by its
// arguments.
func (p *Printer) llmDelta(ev *sse.Event, at time.Time) error {
	d, ok := p.llm.FeedAt(ev, at)
	if !ok {
		return nil
	}
	if m := d.RPC; m != nil {
		if p.lastEnd != '\n' && p.lastEnd != 0 {
			p.buf.WriteByte('\n')
		}
		p.rpcLine(m)
	}
	if d.Reasoning != "" {
		p.style(styleDim, SanitizeText(d.Reasoning))
	}
	p.buf.WriteString(SanitizeText(d.Text))
	if t := d.Tool; t != nil {
		if t.Name != "" || t.ID != "" || len(p.llm.ToolCalls()) > p.tools {
			p.tools = len(p.llm.ToolCalls())
			if p.lastEnd != '\n' && p.lastEnd != 0 || p.buf.Len() > 0 {
				p.buf.WriteByte('\n')
			}
			name := t.Name
			if name == "" {
				name = "?"
			}
			p.style(styleType, "[tool call "+Sanitize(name)+"]")
			if t.ID != "" {
				p.style(styleDim, " "+Sanitize(t.ID))
			}
			p.buf.WriteByte('\n')
		}
		p.buf.WriteString(SanitizeText(t.Args))
	}
	if p.buf.Len() == 0 {
		return nil
	}
	p.lastEnd = p.buf.Bytes()[p.buf.Len()-1]
	_, err := p.w.Write(p.buf.Bytes())
	return err
}

// rpcLine shows one MCP JSON-RPC message on a line: "→ request ID method"
// for a request of the server's own (which wants an answer), "→
// notification method" for a notification (which does not), "← result ID"
// and "← error ID" for a response.
func (p *Printer) rpcLine(m *debugger.RPCMessage) {
	switch {
	case m.Method != "" && m.ID != "":
		p.style(styleType, "→ request "+Sanitize(m.ID)+" "+Sanitize(m.Method))
		p.buf.WriteString(" " + Sanitize(string(m.Params)))
	case m.Method != "":
		p.style(styleType, "→ notification "+Sanitize(m.Method))
		p.buf.WriteString(" " + Sanitize(string(m.Params)))
	case m.Error != nil:
		p.style(styleError, "← error "+Sanitize(m.ID))
		p.buf.WriteString(" " + strconv.Itoa(m.Error.Code) + " " + Sanitize(m.Error.Message))
	default:
		p.style(styleID, "← result "+Sanitize(m.ID))
		p.buf.WriteString(" " + Sanitize(string(m.Result)))
	}
	p.buf.WriteByte('\n')
}

// End finishes the Raw and LLM outputs with a newline. It returns notes
// for stderr, one a line: for LLM output, that no LLM stream was
// recognised, or the usage and timing the stream reported and, last, why
// the model stopped.
func (p *Printer) End() (notes []string) {
	if (p.mode == Raw || p.mode == LLM) && p.lastEnd != '\n' && p.lastEnd != 0 {
		io.WriteString(p.w, "\n")
	}
	if p.mode != LLM {
		return nil
	}
	if p.llm.Format() == "" {
		return []string{"no LLM deltas recognised (OpenAI choices[].delta, Anthropic content_block_delta, OpenAI response.*.delta, Gemini candidates[].content, MCP JSON-RPC)"}
	}
	if u := p.llm.Usage(); u != (debugger.Usage{}) {
		notes = append(notes, fmt.Sprintf("usage: %d input, %d output tokens", u.InputTokens, u.OutputTokens))
	}
	if t, ok := p.llm.Timing(p.start); ok {
		s := "first token after " + FormatGap(t.FirstToken)
		if t.TokensPerSec > 0 {
			s += fmt.Sprintf(", %.1f tokens/s", t.TokensPerSec)
		}
		notes = append(notes, s)
	}
	if f := p.llm.Finish(); f != "" {
		notes = append(notes, "the model stopped: "+Sanitize(f))
	}
	return notes
}
