package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/debugger/term"
)

const listenUsage = `Usage: ssekit listen [flags] URL

Connects to an SSE endpoint (text/event-stream) and prints every event as it
arrives: the SSE curl. Flags may come before or after the URL.

By default it reconnects as a browser's EventSource does (after the
server's retry time, sending Last-Event-ID) and says so on stderr; a
response other than 200 with Content-Type text/event-stream ends it.
With --llm, a stream whose answer was complete (an end marker or a stop
reason) when it ended is not asked for again: a model would answer, and
bill, twice.
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

With --llm-rules FILE, the answer of any JSON stream is assembled by rules,
a JSON object of JSONPath paths ($.a.b[0]['c']) into each event's data:
{"text": "$.out.piece", "toolName": "$.action.fn", "toolArgs": "$.action.argv",
"toolIndex": "$.action.slot", "toolId": …, "reasoning": …, "finish": "$.end.why",
"inputTokens": …, "outputTokens": …}.

Mercure: with --topic (or --match-urlpattern) URL is a Mercure hub's and
listen subscribes in the hub's draft (--draft, asked from the hub by
default): match= / match_urlpattern= and last_event_id for draft-08
(Mercure 1.0), topic= and lastEventID for draft-07, with the --token given
or one --jwt-key signs (an at+jwt access token of --issuer for draft-08).

With --mcp, URL is an MCP Streamable HTTP endpoint: listen opens a session
(initialize, whose response it prints, then notifications/initialized),
sends the -d body, a JSON-RPC request, with the session's Mcp-Session-Id
(without -d, a GET opens the server's own stream), prints each JSON-RPC
message ("→ request", "→ notification", "← result", "← error"), resumes a
broken stream with a GET carrying Last-Event-ID, and ends the session
(DELETE) when it exits.

Examples:

  ssekit listen http://127.0.0.1:8080/events
  ssekit listen --topic 'https://example.com/books/:id' http://127.0.0.1:8080/.well-known/mercure
  ssekit listen --mcp -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}' \
      http://127.0.0.1:3000/mcp
  ssekit listen --json --max-events 5 http://127.0.0.1:8080/events | jq .data
  ssekit listen -H 'Authorization: Bearer sk-…' -H 'Content-Type: application/json' \
      -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
      --no-reconnect https://api.openai.com/v1/chat/completions
`

// listenOptions are the flags of "ssekit listen" beyond the request.
type listenOptions struct {
	maxEvents int
	ndjson    bool   // accept NDJSON responses, each line an event
	record    string // write the session as JSON Lines to this file
}

func runListen(ctx context.Context, m *Main, args []string) error {
	var (
		rf    requestFlags
		opts  listenOptions
		modes struct{ json, raw, llm bool }
	)
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	addRequestFlags(fs, &rf)
	fs.IntVar(&opts.maxEvents, "max-events", 0, "exit after `N` events (0: no limit)")
	fs.DurationVar(&rf.spec.Timeout, "timeout", 0, "give up after `DURATION` in all, with exit status 124 (0: never)")
	fs.BoolVar(&rf.spec.NoReconnect, "no-reconnect", false, "exit when the stream ends instead of reconnecting")
	fs.BoolVar(&modes.json, "json", false, "print one JSON object per event, and nothing else, on stdout")
	fs.BoolVar(&modes.raw, "raw", false, "print the body's bytes as received, each read marked, instead of events")
	fs.BoolVar(&modes.llm, "llm", false, "print the answer of an LLM streaming API (OpenAI chat and Responses, Anthropic, Gemini) or the JSON-RPC messages of an MCP stream as they arrive, then the usage and timing, instead of events")
	rulesFile := fs.String("llm-rules", "", "assemble the answer of a JSON stream in a format of its own with the JSONPath rules of `FILE` (implies --llm; see 'ssekit help listen')")
	fs.BoolVar(&rf.spec.MCP, "mcp", false, "open an MCP Streamable HTTP session on URL first and show its JSON-RPC messages (implies --llm unless --json or --raw; see 'ssekit help listen')")
	fs.BoolVar(&opts.ndjson, "ndjson", false, "also accept a newline-delimited JSON response (application/x-ndjson, application/jsonl) and show each line as an event")
	fs.StringVar(&opts.record, "record", "", "also write the session (events, comments, connections, with timing) as JSON Lines to `FILE`, for 'ssekit replay'")
	var ml mercureListen
	addMercureListenFlags(fs, &ml, true)
	colorFlag := fs.String("color", "auto", "colour the output: `WHEN` is auto (when stdout is a terminal and NO_COLOR is unset), always or never")

	rest, err := m.parseFlags(fs, listenUsage, args)
	if err != nil {
		return err
	}
	url, err := streamURL("listen", rest)
	if err != nil {
		return err
	}
	if opts.maxEvents < 0 {
		return usageErrorf("--max-events must not be negative")
	}
	if rf.spec.Timeout < 0 {
		return usageErrorf("--timeout must not be negative")
	}
	if *rulesFile != "" || (rf.spec.MCP && !modes.json && !modes.raw) {
		modes.llm = true
	}
	mode := term.Blocks
	switch {
	case btoi(modes.json)+btoi(modes.raw)+btoi(modes.llm) > 1:
		return usageErrorf("--json, --raw and --llm are different outputs: choose one")
	case modes.json:
		mode = term.JSON
	case modes.raw:
		mode = term.Raw
	case modes.llm:
		mode = term.LLM
	}
	color, err := m.colorEnabled(*colorFlag)
	if err != nil {
		return err
	}
	spec, err := m.requestSpec(&rf, url)
	if err != nil {
		return err
	}
	if err := ml.apply(ctx, m, fs, spec); err != nil {
		return err
	}
	out := term.NewPrinter(m.Stdout, mode, color)
	if *rulesFile != "" {
		b, err := os.ReadFile(*rulesFile)
		if err != nil {
			return fmt.Errorf("--llm-rules: %w", err)
		}
		spec.LLMRules = &debugger.MergeRules{}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(spec.LLMRules); err != nil {
			return fmt.Errorf("--llm-rules: %s: %w", *rulesFile, err)
		}
		if err := out.Assembler().SetRules(spec.LLMRules); err != nil {
			return fmt.Errorf("--llm-rules: %s: %w", *rulesFile, err)
		}
	}
	return m.listen(ctx, spec, &opts, out)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// listen runs the stream and prints it until it ends.
func (m *Main) listen(parent context.Context, spec *debugger.RequestSpec, opts *listenOptions, out *term.Printer) error {
	ctx, cancel := spec.WithTimeout(parent)
	defer cancel()
	req, err := spec.NewRequest(ctx)
	if err != nil {
		return usageErrorf("%v", err)
	}

	var (
		connections int
		es          *debugger.Stream
	)
	httpClient := m.httpClient(spec.Insecure)
	if opts.ndjson {
		httpClient = debugger.NDJSONClient(httpClient)
	}
	if spec.MCP {
		sess, err := debugger.MCPInitialize(ctx, httpClient, spec)
		switch {
		case err != nil && parent.Err() != nil:
			return context.Canceled
		case err != nil && errors.Is(context.Cause(ctx), debugger.ErrTimeout):
			return &exitError{exitTimeout, fmt.Errorf("timed out after %s opening the MCP session", spec.Timeout)}
		case err != nil:
			return fmt.Errorf("%s: %s", spec.URL, strings.TrimPrefix(err.Error(), "debugger: "))
		}
		hc := httpClient
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := sess.Close(ctx, hc); err != nil {
				m.logf("listen", "%s", strings.TrimPrefix(err.Error(), "debugger: "))
			}
		}()
		httpClient = sess.Client(httpClient)
		m.logf("listen", "MCP session %q opened (protocol %s)", sess.ID, sess.ProtocolVersion)
		if err := out.Event(&sse.Event{Type: "initialize", Data: string(sess.Response)}, m.now()); err != nil {
			return err
		}
	}
	client := &sse.Client{
		HTTPClient:  httpClient,
		NoReconnect: spec.NoReconnect,
		OnConnect: func(resp *http.Response) {
			connections++
			out.Connected(m.now())
			note := ""
			if ct := resp.Header.Get(debugger.ConvertedFromHeader); ct != "" {
				note = fmt.Sprintf("; %s: each line shown as an event", ct)
			}
			if id, ok := resp.Header["Mercure-Last-Event-Id"]; ok && len(id) > 0 {
				note += fmt.Sprintf("; the hub resumes after %q", id[0])
			}
			if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
				// MCP Streamable HTTP: the session later requests must
				// send; a reconnection resumes with Last-Event-ID.
				note += fmt.Sprintf("; MCP session %q", id)
			}
			m.logf("listen", "connected to %s (%s %s%s)", spec.URL, resp.Proto, resp.Status, note)
		},
		OnComment: func(text string) { out.Comment(text, m.now()) },
		OnRetry: func(err error, delay time.Duration) {
			resume := ""
			if id := es.LastEventID(); id != "" {
				resume = fmt.Sprintf(" with Last-Event-ID %q", id)
			}
			m.logf("listen", "%s; reconnecting in %s%s", debugger.EndReason(err), delay.Round(time.Millisecond), resume)
		},
	}
	if out.Mode() == term.Raw {
		client.OnRead = func(chunk []byte) { out.Chunk(chunk, m.now()) }
	}
	var rec *debugger.Recorder
	if opts.record != "" {
		f, err := os.Create(opts.record)
		if err != nil {
			return fmt.Errorf("--record: %w", err)
		}
		defer f.Close()
		rec = debugger.NewRecorder(f, spec, m.now)
		rec.Install(client)
		req = req.WithContext(rec.Tracker.Trace(req.Context()))
	}
	es = debugger.Connect(client, req)
	defer es.Close()
	if out.Mode() == term.LLM {
		es.EndAnswered(out.Assembler()) // a complete answer is not asked for again
	}
	if rec != nil {
		rec.Tracker.Source = es.EventSource
	}
	defer func() {
		for _, note := range out.End() {
			m.logf("listen", "%s", note)
		}
	}()

	for events := 0; ; {
		ev, err := es.Next()
		if err != nil {
			if rec != nil {
				rec.Write(rec.Tracker.End(err))
			}
			if err := rec.Err(); err != nil {
				return fmt.Errorf("--record: %w", err)
			}
			return m.listenEnd(parent, spec, err, connections, events)
		}
		events++
		if rec != nil {
			rec.Write(rec.Tracker.Event(&ev))
		}
		if err := out.Event(&ev, m.now()); err != nil {
			return err
		}
		if opts.maxEvents > 0 && events >= opts.maxEvents {
			if rec != nil {
				rec.Write(rec.Tracker.End(nil))
			}
			if err := rec.Err(); err != nil {
				return fmt.Errorf("--record: %w", err)
			}
			return nil
		}
	}
}

// listenEnd turns the end of the stream into the command's result: nil for
// a clean end, or the one-line reason (see the exit codes in listenUsage).
func (m *Main) listenEnd(parent context.Context, spec *debugger.RequestSpec, err error, connections, events int) error {
	var (
		statusErr  *sse.StatusError
		typeErr    *sse.ContentTypeError
		connectErr *debugger.ConnectError
	)
	switch {
	case parent.Err() != nil:
		return context.Canceled
	case errors.Is(err, debugger.ErrTimeout):
		return &exitError{exitTimeout, fmt.Errorf("timed out after %s (%s)", spec.Timeout, term.Plural(events, "event"))}
	case debugger.CleanEnd(err):
		m.logf("listen", "%s", debugger.EndReason(err))
		return nil
	case errors.As(err, &statusErr):
		msg := spec.URL + ": " + statusErr.Status
		if body := strings.TrimSpace(string(statusErr.Body)); body != "" {
			msg += ": " + term.Truncate(oneLine(body), 200)
		}
		return errors.New(msg)
	case errors.As(err, &typeErr):
		return fmt.Errorf("%s: %s", spec.URL, debugger.EndReason(err))
	case errors.As(err, &connectErr), connections == 0:
		return connectFailure(spec.URL, err)
	default:
		return fmt.Errorf("%s: %s", spec.URL, debugger.EndReason(err))
	}
}

// connectFailure is the error of a command whose first connection to url
// failed (listen, lint).
func connectFailure(url string, err error) error {
	return fmt.Errorf("cannot connect to %s: %s", url, debugger.NetReason(err))
}

// logf writes one diagnostic line to stderr, as "ssekit <cmd>: …", with
// control characters made visible: the line may quote a server (a status
// line, a header, an error body).
func (m *Main) logf(cmd, format string, args ...any) {
	fmt.Fprintf(m.Stderr, "ssekit %s: %s\n", cmd, term.Sanitize(oneLine(fmt.Sprintf(format, args...))))
}
