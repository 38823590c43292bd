package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/debugger/term"
	"github.com/ssekit/sse/mock"
)

const mockUsage = `Usage: ssekit mock [--addr 127.0.0.1:8080] [--seed N] SCRIPT
       ssekit mock --check SCRIPT
       ssekit mock --convert RECORDING.jsonl

Serves event streams from a script, to test how a client meets a bad
stream: events and comments, pauses, statuses and headers (5xx, 204, 429
with Retry-After, a wrong Content-Type), retry fields, connections dropped
mid-event, bytes split at any boundary, slow trickles, gzip, a BOM, CR or
CRLF line ends, invalid UTF-8, oversized events; what a reconnection gets
(resume after Last-Event-ID, or fail the next N attempts); several routes
matched on method, path, headers and body (an LLM API). Random choices
follow the seed, so a run can be reproduced.

A script is a text file, one directive a line; docs/mock.md documents the
format. A recording (ssekit listen --record, the debugger's export) is
served as a script too; --convert prints the script it becomes, to edit.
A bad script is refused with its file, line and why (exit 2).
`

func runMock(ctx context.Context, m *Main, args []string) error {
	fs := flag.NewFlagSet("mock", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen on `HOST:PORT` (port 0 picks a free one)")
	seed := fs.Uint64("seed", 0, "seed the random choices with `N` instead of the script's seed")
	check := fs.Bool("check", false, "only check the script and exit")
	convert := fs.Bool("convert", false, "print the script a recording becomes and exit")
	maxConns := fs.Int("max-connections", mock.DefaultMaxConnections, "answer 503 past `N` responses at once")
	maxDuration := fs.Duration("max-duration", mock.DefaultMaxDuration, "end a response after `DURATION` (pauses and hold included)")
	rest, err := m.parseFlags(fs, mockUsage, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErrorf("want exactly one script, got %d arguments (see 'ssekit mock --help')", len(rest))
	}
	if *maxConns <= 0 || *maxDuration <= 0 {
		return usageErrorf("--max-connections and --max-duration must be positive")
	}
	name := rest[0]
	text, err := readScriptFile(name)
	if err != nil {
		return err
	}
	if *convert {
		if !isRecording(text) {
			return usageErrorf("%s is not a recording (JSON Lines from listen --record or the debugger)", name)
		}
		s, err := recordingToScript(name, text)
		if err != nil {
			return err
		}
		_, err = m.Stdout.Write([]byte(s))
		return err
	}
	script, err := loadScript(name, text)
	if err != nil {
		return &usageError{err.Error()}
	}
	if *check {
		m.logf("mock", "%s: %s, ok", name, term.Plural(len(script.Routes), "route"))
		return nil
	}
	srv := mock.New(script, mock.Options{
		Seed:           *seed,
		MaxConnections: *maxConns,
		MaxDuration:    *maxDuration,
		Logger:         slog.New(slog.NewTextHandler(m.Stderr, nil)),
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	m.logf("mock", "serving %s (%s) at http://%s/ (Ctrl-C stops)", name, term.Plural(len(script.Routes), "route"), ln.Addr())
	return serveStreams(ctx, ln, srv)
}

// readScriptFile reads a script, refusing one over the size limit before
// reading it whole.
func readScriptFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > mock.MaxScriptSize*8 {
		return nil, fmt.Errorf("%s: %d bytes; a script is at most %d (a recording %d)", name, st.Size(), mock.MaxScriptSize, mock.MaxScriptSize*8)
	}
	var b bytes.Buffer
	_, err = b.ReadFrom(f)
	return b.Bytes(), err
}

// loadScript parses a script, or a recording converted to one.
func loadScript(name string, text []byte) (*mock.Script, error) {
	if isRecording(text) {
		s, err := recordingToScript(name, text)
		if err != nil {
			return nil, err
		}
		text = []byte(s)
	}
	return mock.Parse(name, text)
}

// isRecording reports whether text is JSON Lines (a recording) rather
// than a script, whose lines never start with "{".
func isRecording(text []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(text, " \t\r\n"), []byte("{"))
}

// recordingToScript turns a recording into a mock script: the first
// connection's status and Content-Type, then each event and comment with
// the recorded pause before it, resumable after any event's id. An event
// whose raw bytes were recorded is sent as those bytes: as "> " lines when
// they are plain (UTF-8, LF line ends, no BOM), as a bytes step otherwise;
// the comment records of that block are then not sent again. Other events
// are encoded from their fields.
func recordingToScript(name string, text []byte) (string, error) {
	recs, err := debugger.ReadRecords(bytes.NewReader(text))
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	var (
		head   strings.Builder
		items  []string // each item's lines, pause included
		prev   float64
		since  int // comment items since the last event
		opened bool
	)
	fmt.Fprintf(&head, "# Converted from the recording %s by 'ssekit mock --convert'.\n", name)
	for _, r := range recs {
		switch r.Kind {
		case debugger.KindRequest:
			if r.Request != nil {
				fmt.Fprintf(&head, "# recorded from %s %s\n", r.Request.Method, term.Sanitize(r.Request.URL))
			}
		case debugger.KindOpen:
			if !opened {
				opened, prev = true, r.T
				head.WriteString("route * *\nresume\n")
				if r.Status != 0 && r.Status != 200 {
					fmt.Fprintf(&head, "status %d\n", r.Status)
				}
				if ct := r.Header.Get("Content-Type"); ct != "" && ct != "text/event-stream" && !strings.ContainsAny(ct, "\r\n") {
					fmt.Fprintf(&head, "header Content-Type: %s\n", ct)
				}
			}
		case debugger.KindComment:
			items = append(items, pauseLine(r.T-prev)+"> :"+r.Text+"\n")
			prev, since = r.T, since+1
		case debugger.KindEvent:
			block, comments, err := eventBlock(&r)
			if err != nil {
				return "", fmt.Errorf("%s: event %d: %w", name, r.Seq, err)
			}
			items = items[:len(items)-min(comments, since)]
			items = append(items, pauseLine(r.T-prev)+block)
			prev, since = r.T, 0
		}
	}
	if len(items) == 0 {
		return "", fmt.Errorf("%s: %w", name, debugger.ErrNothingToReplay)
	}
	if !opened {
		head.WriteString("route * *\nresume\n")
	}
	return head.String() + strings.Join(items, ""), nil
}

// pauseLine is the pause step for a gap of ms milliseconds, within the
// script's limit; "" for none.
func pauseLine(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond)).Round(time.Millisecond)
	if d <= 0 {
		return ""
	}
	return "pause " + min(d, mock.MaxPause).String() + "\n"
}

// eventBlock returns the script lines of an event record and the count of
// comment lines inside its raw block.
func eventBlock(r *debugger.Record) (string, int, error) {
	raw := r.Raw
	if raw == "" {
		ev := &sse.Event{ID: r.ID, Type: r.Type, Data: r.Data}
		if ev.Type == "message" {
			ev.Type = ""
		}
		if r.Retry != nil {
			ev.Retry, ev.HasRetry = time.Duration(*r.Retry)*time.Millisecond, true
		}
		wire, err := ev.AppendTo(nil)
		if err != nil {
			return "", 0, err
		}
		raw = string(wire)
	}
	comments := 0
	for _, line := range strings.FieldsFunc(raw, func(c rune) bool { return c == '\n' || c == '\r' }) {
		if strings.HasPrefix(line, ":") {
			comments++
		}
	}
	if r.Raw != "" && (!utf8.ValidString(raw) || strings.ContainsRune(raw, '\r') || strings.HasPrefix(raw, "\xEF\xBB\xBF") || !strings.HasSuffix(raw, "\n\n")) {
		return "bytes " + strconv.Quote(raw) + "\n", comments, nil
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(raw, "\n"), "\n") {
		if line == "" {
			b.WriteString(">\n")
		} else {
			b.WriteString("> " + line + "\n")
		}
	}
	return b.String(), comments, nil
}
