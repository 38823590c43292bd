package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/debugger"
)

const listenUsage = `Usage: ssekit listen [flags] URL

Connects to an SSE endpoint (text/event-stream) and prints every event as it
arrives: the SSE curl. Flags may come before or after the URL.

By default it reconnects as a browser's EventSource does (after the
server's retry time, sending Last-Event-ID) and says so on stderr; a
response other than 200 with Content-Type text/event-stream ends it.
A first connection that fails ends it too.

Output is one block per event: arrival time, the gap since the previous
event (for the first, since the connection opened), type, id and data, with
JSON data pretty-printed; comments (heartbeats) show as ": text" lines.
With --json, stdout carries exactly one JSON object per event and nothing
else: {"type":"message","data":"…","id":"…"}, plus "retry":N (milliseconds)
when the event's block set a retry. Diagnostics always go to stderr.

Exit status: 0 when the stream ends cleanly (--max-events reached, the end
of the stream with --no-reconnect, or 204 No Content); 1 with a one-line
reason on stderr when the connection fails or the response is not a 200
event stream; 2 for a bad command line; 124 when --timeout expires.

Examples:

  ssekit listen http://127.0.0.1:8080/events
  ssekit listen --json --max-events 5 http://127.0.0.1:8080/events | jq .data
  ssekit listen -H 'Authorization: Bearer sk-…' -H 'Content-Type: application/json' \
      -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
      --no-reconnect https://api.openai.com/v1/chat/completions
`

// errTimeout is the cause of a --timeout expiry.
var errTimeout = errors.New("timeout")

// listenOptions are the flags of "ssekit listen".
type listenOptions struct {
	url         string
	method      string
	headers     http.Header
	host        string // from -H 'Host: …'
	data        string // -d as given: a body, or @file, or @- for stdin
	hasData     bool
	lastEventID string
	maxEvents   int
	timeout     time.Duration
	noReconnect bool
	json        bool
	color       string
	insecure    bool
	raw         bool   // print the body's bytes as received instead of events
	llm         bool   // print the LLM answer assembled from the events
	record      string // write the session as JSON Lines to this file
}

func runListen(ctx context.Context, m *Main, args []string) error {
	opts := listenOptions{headers: http.Header{}}
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	addRequestFlags(fs, &opts)
	fs.StringVar(&opts.lastEventID, "last-event-id", "", "send Last-Event-ID: `ID` on the first request, to resume a stream")
	fs.IntVar(&opts.maxEvents, "max-events", 0, "exit after `N` events (0: no limit)")
	fs.DurationVar(&opts.timeout, "timeout", 0, "give up after `DURATION` in all, with exit status 124 (0: never)")
	fs.BoolVar(&opts.noReconnect, "no-reconnect", false, "exit when the stream ends instead of reconnecting")
	fs.BoolVar(&opts.json, "json", false, "print one JSON object per event, and nothing else, on stdout")
	fs.BoolVar(&opts.raw, "raw", false, "print the body's bytes as received, each read marked, instead of events")
	fs.BoolVar(&opts.llm, "llm", false, "print the answer of an LLM streaming API (OpenAI, Anthropic) as it grows, instead of events")
	fs.StringVar(&opts.record, "record", "", "also write the session (events, comments, connections, with timing) as JSON Lines to `FILE`, for 'ssekit replay'")
	fs.StringVar(&opts.color, "color", "auto", "colour the output: `WHEN` is auto (when stdout is a terminal and NO_COLOR is unset), always or never")

	rest, err := m.parseFlags(fs, listenUsage, args)
	if err != nil {
		return err
	}
	if opts.url, err = streamURL("listen", rest); err != nil {
		return err
	}
	if opts.maxEvents < 0 {
		return usageErrorf("--max-events must not be negative")
	}
	if opts.timeout < 0 {
		return usageErrorf("--timeout must not be negative")
	}
	if modes := btoi(opts.json) + btoi(opts.raw) + btoi(opts.llm); modes > 1 {
		return usageErrorf("--json, --raw and --llm are different outputs: choose one")
	}
	color, err := m.colorEnabled(opts.color)
	if err != nil {
		return err
	}
	out := &eventPrinter{w: m.Stdout, json: opts.json, raw: opts.raw, color: color}
	if opts.llm {
		out.llm = &debugger.Assembler{}
	}
	return m.listen(ctx, &opts, out)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// streamURL returns the one argument of the command cmd (listen, lint): the
// http:// or https:// URL of the stream.
func streamURL(cmd string, args []string) (string, error) {
	if len(args) != 1 {
		return "", usageErrorf("want exactly one URL, got %d arguments (see 'ssekit %s --help')", len(args), cmd)
	}
	if u, err := url.Parse(args[0]); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageErrorf("%q is not an http:// or https:// URL", args[0])
	}
	return args[0], nil
}

// addRequestFlags defines the flags that describe the request (-X, -H, -d,
// --insecure), shared by the commands that make one (listen, lint).
func addRequestFlags(fs *flag.FlagSet, opts *listenOptions) {
	fs.StringVar(&opts.method, "X", "", "request `METHOD` (default GET, or POST with -d)")
	fs.Func("H", "request header `'Name: value'` (repeatable)", func(s string) error {
		name, value, ok := strings.Cut(s, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("want 'Name: value', got %q", s)
		}
		value = strings.TrimSpace(value)
		if strings.EqualFold(name, "Host") {
			opts.host = value
			return nil
		}
		opts.headers.Add(name, value)
		return nil
	})
	fs.Func("d", "request `BODY`; @file reads it from a file, @- from stdin (implies POST)", func(s string) error {
		opts.data, opts.hasData = s, true
		return nil
	})
	fs.BoolVar(&opts.insecure, "insecure", false, "do not verify the server's TLS certificate")
}

// colorEnabled decides --color: "auto" colours a terminal unless NO_COLOR
// is set (no-color.org) or TERM is dumb.
func (m *Main) colorEnabled(when string) (bool, error) {
	switch when {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		return isTerminal(m.Stdout) && m.getenv("NO_COLOR") == "" && m.getenv("TERM") != "dumb", nil
	}
	return false, usageErrorf("--color must be auto, always or never, not %q", when)
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// listen runs the stream and prints it until it ends.
func (m *Main) listen(ctx context.Context, opts *listenOptions, out *eventPrinter) error {
	parent := ctx
	if opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, opts.timeout, errTimeout)
		defer cancel()
	}
	// A failed first connection ends the stream: a debugging tool pointed
	// at a wrong URL says so at once rather than retrying forever.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	req, err := m.listenRequest(ctx, opts)
	if err != nil {
		return err
	}

	var (
		connections int
		es          *sse.EventSource
	)
	client := &sse.Client{
		HTTPClient:  m.httpClient(opts.insecure),
		NoReconnect: opts.noReconnect,
		OnConnect: func(resp *http.Response) {
			connections++
			out.connected(m.now())
			m.logf("listen", "connected to %s (%s %s)", opts.url, resp.Proto, resp.Status)
		},
		OnComment: func(text string) { out.comment(text, m.now()) },
		OnRetry: func(err error, delay time.Duration) {
			if connections == 0 {
				stop(&connectError{err})
				return
			}
			resume := ""
			if id := es.LastEventID(); id != "" {
				resume = fmt.Sprintf(" with Last-Event-ID %q", id)
			}
			m.logf("listen", "%s; reconnecting in %s%s", endReason(err), delay.Round(time.Millisecond), resume)
		},
	}
	if opts.raw {
		client.OnRead = func(chunk []byte) { out.chunk(chunk, m.now()) }
	}
	var rec *sessionRecorder
	if opts.record != "" {
		if rec, err = m.startRecord(opts, client); err != nil {
			return err
		}
		defer rec.close()
		req = req.WithContext(rec.tracker.Trace(req.Context()))
	}
	es = client.Connect(req)
	defer es.Close()
	if rec != nil {
		rec.tracker.Source = es
	}
	defer out.end(m)

	events := 0
	for {
		ev, err := es.Next()
		if err != nil {
			if rec != nil {
				rec.write(rec.tracker.End(err))
			}
			if err := rec.err(); err != nil {
				return err
			}
			return m.listenEnd(parent, opts, err, connections, events)
		}
		events++
		if rec != nil {
			rec.write(rec.tracker.Event(&ev))
		}
		if err := out.event(&ev, m.now()); err != nil {
			return err
		}
		if opts.maxEvents > 0 && events >= opts.maxEvents {
			if rec != nil {
				rec.write(rec.tracker.End(nil))
			}
			return rec.err()
		}
	}
}

// listenEnd turns the end of the stream into the command's result.
func (m *Main) listenEnd(parent context.Context, opts *listenOptions, err error, connections, events int) error {
	var (
		statusErr  *sse.StatusError
		typeErr    *sse.ContentTypeError
		connectErr *connectError
	)
	switch {
	case parent.Err() != nil:
		return context.Canceled
	case errors.Is(err, errTimeout):
		return &exitError{exitTimeout, fmt.Errorf("timed out after %s (%s)", opts.timeout, plural(events, "event"))}
	case errors.Is(err, io.EOF):
		m.logf("listen", "the server ended the stream")
		return nil
	case errors.As(err, &statusErr) && statusErr.StatusCode == http.StatusNoContent:
		m.logf("listen", "the server answered 204 No Content: the stream is over")
		return nil
	case errors.As(err, &statusErr):
		msg := fmt.Sprintf("%s: %s", opts.url, statusErr.Status)
		if body := strings.TrimSpace(string(statusErr.Body)); body != "" {
			msg += ": " + truncate(oneLine(body), 200)
		}
		return errors.New(msg)
	case errors.As(err, &typeErr):
		ct := typeErr.ContentType
		if ct == "" {
			return fmt.Errorf("%s: response has no Content-Type; want text/event-stream", opts.url)
		}
		return fmt.Errorf("%s: Content-Type is %q; want text/event-stream", opts.url, ct)
	case errors.As(err, &connectErr), connections == 0:
		return fmt.Errorf("cannot connect to %s: %s", opts.url, netReason(err))
	default:
		return fmt.Errorf("%s: %s", opts.url, endReason(err))
	}
}

// plural says "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// connectError is a first connection that failed.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// endReason says in words why a connection ended.
func endReason(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "the server ended the stream"
	case errors.Is(err, sse.ErrReadTimeout):
		return "no data arrived for too long"
	case errors.Is(err, sse.ErrEventTooLarge):
		return "an event is larger than the maximum event size"
	}
	return "connection lost: " + netReason(err)
}

// netReason is a network error without the "Get URL:" prefix of
// *url.Error, since the messages name the URL already.
func netReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

// listenRequest builds the request from the flags.
func (m *Main) listenRequest(ctx context.Context, opts *listenOptions) (*http.Request, error) {
	var body []byte
	if opts.hasData {
		var err error
		if body, err = m.readData(opts.data); err != nil {
			return nil, err
		}
	}
	method := opts.method
	if method == "" {
		method = http.MethodGet
		if opts.hasData {
			method = http.MethodPost
		}
	}
	var r io.Reader
	if opts.hasData {
		r = bytes.NewReader(body) // NewRequest sets GetBody: it is re-sent on every reconnection
	}
	req, err := http.NewRequestWithContext(ctx, method, opts.url, r)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	for name, values := range opts.headers {
		req.Header[name] = values
	}
	if opts.host != "" {
		req.Host = opts.host
	}
	if opts.hasData && req.Header.Get("Content-Type") == "" {
		// LLM APIs take JSON; anything else is sent as curl -d sends it.
		ct := "application/x-www-form-urlencoded"
		if json.Valid(body) {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if opts.lastEventID != "" {
		req.Header.Set("Last-Event-ID", opts.lastEventID)
	}
	return req, nil
}

// readData reads -d: the value itself, @file or @- for stdin.
func (m *Main) readData(data string) ([]byte, error) {
	name, ok := strings.CutPrefix(data, "@")
	switch {
	case !ok:
		return []byte(data), nil
	case name == "-":
		if m.Stdin == nil {
			return nil, nil
		}
		b, err := io.ReadAll(m.Stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the body from stdin: %w", err)
		}
		return b, nil
	default:
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading the body: %w", err)
		}
		return b, nil
	}
}

// httpClient is m.HTTPClient (a plain one when nil), without TLS
// certificate verification for --insecure.
func (m *Main) httpClient(insecure bool) *http.Client {
	c := m.HTTPClient
	if c == nil {
		c = &http.Client{}
	}
	if !insecure {
		return c
	}
	return debugger.InsecureClient(c)
}

// logf writes one diagnostic line to stderr, as "ssekit <cmd>: …".
func (m *Main) logf(cmd, format string, args ...any) {
	fmt.Fprintf(m.Stderr, "ssekit %s: %s\n", cmd, oneLine(fmt.Sprintf(format, args...)))
}

// eventPrinter writes events to stdout, as JSON lines or as blocks for
// people. Each event is one Write, so a reader of a pipe sees it whole and
// at once.
type eventPrinter struct {
	w     io.Writer
	json  bool
	raw   bool                // print chunks, not events
	llm   *debugger.Assembler // print the assembled answer, not events
	color bool
	// Set by --raw and --llm.
	chunks  int
	lastEnd byte      // the last byte written by chunk or llm output
	tools   int       // tool calls announced by the llm output
	prev    time.Time // the previous event, or the connection
	buf     bytes.Buffer
}

// jsonEvent is the --json line: the DESIGN.md contract.
type jsonEvent struct {
	Type  string `json:"type"`
	Data  string `json:"data"`
	ID    string `json:"id"`
	Retry *int64 `json:"retry,omitempty"`
}

// ANSI styles of the human output.
const (
	styleDim   = "\x1b[2m"
	styleType  = "\x1b[1;36m"
	styleID    = "\x1b[33m"
	styleRetry = "\x1b[35m"
	styleReset = "\x1b[0m"
)

// connected notes when a connection opened: the first event's gap is the
// time it took to arrive.
func (p *eventPrinter) connected(at time.Time) {
	if p.prev.IsZero() {
		p.prev = at
	}
}

func (p *eventPrinter) event(ev *sse.Event, at time.Time) error {
	p.buf.Reset()
	switch {
	case p.raw:
		p.prev = at
		return nil
	case p.llm != nil:
		p.prev = at
		return p.llmDelta(ev)
	}
	if p.json {
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
	} else {
		gap := time.Duration(0)
		if !p.prev.IsZero() {
			gap = at.Sub(p.prev)
		}
		p.style(styleDim, at.Format("15:04:05.000")+"  +"+formatGap(gap))
		p.buf.WriteString("  ")
		p.style(styleType, sanitize(ev.Type))
		if ev.ID != "" {
			p.buf.WriteString("  ")
			p.style(styleID, "id="+sanitize(ev.ID))
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
				p.buf.WriteString(sanitize(line))
				p.buf.WriteByte('\n')
			}
		}
		p.buf.WriteByte('\n')
	}
	p.prev = at
	_, err := p.w.Write(p.buf.Bytes())
	return err
}

// comment shows a comment line (a heartbeat, usually) in the human output;
// --json output has only events.
func (p *eventPrinter) comment(text string, at time.Time) {
	if p.json || p.raw || p.llm != nil {
		return
	}
	p.buf.Reset()
	p.style(styleDim, at.Format("15:04:05.000")+"  :"+sanitize(text))
	p.buf.WriteString("\n\n")
	p.w.Write(p.buf.Bytes())
}

func (p *eventPrinter) style(style, text string) {
	if p.color {
		p.buf.WriteString(style)
	}
	p.buf.WriteString(text)
	if p.color {
		p.buf.WriteString(styleReset)
	}
}

// formatGap rounds a gap to what a person reads: milliseconds, or
// microseconds below one.
func formatGap(d time.Duration) string {
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

// sanitize makes control characters visible (\x1b, \u009b) so that an
// event cannot move the cursor or recolour the terminal; tabs stay.
func sanitize(s string) string {
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

// chunk prints one read of the body (--raw): a marker line with its number,
// size and arrival, then its bytes with line ends shown (\r, \n) and other
// control characters escaped, so that where the server's writes (or a
// proxy's buffering) cut the stream is visible.
func (p *eventPrinter) chunk(b []byte, at time.Time) {
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
	p.style(styleDim, fmt.Sprintf("── read %d · %s · %s +%s ──", p.chunks, plural(len(b), "byte"), at.Format("15:04:05.000"), formatGap(gap)))
	p.buf.WriteByte('\n')
	for _, line := range splitAfterLineEnds(b) {
		body := strings.TrimRight(line, "\r\n")
		p.buf.WriteString(sanitize(body))
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

// llmDelta prints what an event added to an LLM answer (--llm): text as
// is, as it arrives, and each tool call on a line of its own followed by
// its arguments.
func (p *eventPrinter) llmDelta(ev *sse.Event) error {
	d, ok := p.llm.Feed(ev)
	if !ok {
		return nil
	}
	if d.Reasoning != "" {
		p.style(styleDim, sanitizeText(d.Reasoning))
	}
	p.buf.WriteString(sanitizeText(d.Text))
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
			p.style(styleType, "[tool call "+sanitize(name)+"]")
			if t.ID != "" {
				p.style(styleDim, " "+sanitize(t.ID))
			}
			p.buf.WriteByte('\n')
		}
		p.buf.WriteString(sanitizeText(t.Args))
	}
	if p.buf.Len() == 0 {
		return nil
	}
	p.lastEnd = p.buf.Bytes()[p.buf.Len()-1]
	_, err := p.w.Write(p.buf.Bytes())
	return err
}

// sanitizeText is sanitize for flowing text: newlines stay.
func sanitizeText(s string) string {
	if !strings.ContainsAny(s, "\n") {
		return sanitize(s)
	}
	parts := strings.Split(s, "\n")
	for i := range parts {
		parts[i] = sanitize(parts[i])
	}
	return strings.Join(parts, "\n")
}

// end finishes the --raw and --llm outputs with a newline, and says when
// --llm saw no LLM stream.
func (p *eventPrinter) end(m *Main) {
	if (p.raw || p.llm != nil) && p.lastEnd != '\n' && p.lastEnd != 0 {
		io.WriteString(p.w, "\n")
	}
	if p.llm != nil {
		switch {
		case p.llm.Format() == "":
			m.logf("listen", "no LLM deltas recognised (OpenAI choices[].delta, Anthropic content_block_delta, OpenAI response.*.delta)")
		case p.llm.Finish() != "":
			m.logf("listen", "the model stopped: %s", p.llm.Finish())
		}
	}
}

// sessionRecorder writes --record.
type sessionRecorder struct {
	f       *os.File
	w       *debugger.RecordWriter
	tracker *debugger.Tracker
	werr    error
}

// startRecord creates the --record file, writes the request to it and
// installs the tracker's hooks on the client (after the ones it has).
func (m *Main) startRecord(opts *listenOptions, client *sse.Client) (*sessionRecorder, error) {
	f, err := os.Create(opts.record)
	if err != nil {
		return nil, fmt.Errorf("--record: %w", err)
	}
	r := &sessionRecorder{f: f, w: debugger.NewRecordWriter(f), tracker: debugger.NewTracker(m.now)}
	spec := debugger.RequestSpec{Method: opts.method, URL: opts.url, LastEventID: opts.lastEventID, NoReconnect: opts.noReconnect}
	if spec.Method == "" {
		spec.Method = http.MethodGet
		if opts.hasData {
			spec.Method = http.MethodPost
		}
	}
	for name, values := range opts.headers {
		for _, v := range values {
			spec.Headers = append(spec.Headers, debugger.Header{Name: name, Value: v})
		}
	}
	if opts.hasData && !strings.HasPrefix(opts.data, "@") {
		spec.Body = opts.data
	}
	spec = spec.Redacted()
	r.write(debugger.Record{Kind: debugger.KindRequest, Request: &spec})
	r.tracker.Install(client, r.write)
	return r, nil
}

func (r *sessionRecorder) write(rec debugger.Record) {
	if r.werr == nil {
		if err := r.w.Write(&rec); err != nil {
			r.werr = fmt.Errorf("--record: %w", err)
		}
	}
}

// err returns the first write error; nil on a nil sessionRecorder.
func (r *sessionRecorder) err() error {
	if r == nil {
		return nil
	}
	return r.werr
}

func (r *sessionRecorder) close() {
	if err := r.f.Close(); err != nil && r.werr == nil {
		r.werr = err
	}
}
