package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/debugger/term"
)

const replayUsage = `Usage: ssekit replay [--addr 127.0.0.1:8080] [--speed N] FILE.jsonl

Serves a recorded session as an SSE endpoint, on every path, with the
original timing (or N times faster), so that a stream can be reproduced
without the server it came from: record it with 'ssekit listen --record
FILE.jsonl' or export it from 'ssekit debug'.

Events keep their ids, types and retry fields, and comments are replayed
too. An event whose recording keeps its raw bytes is sent as those exact
bytes (line endings, comments inside it, bytes that are not UTF-8); older
recordings are encoded again from the fields. A client that reconnects with Last-Event-ID resumes after that event;
one that already has the last event gets 204 No Content.
`

func runReplay(ctx context.Context, m *Main, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen on `HOST:PORT` (port 0 picks a free one)")
	speed := fs.Float64("speed", 1, "replay `N` times faster than recorded (0: no waiting at all)")
	rest, err := m.parseFlags(fs, replayUsage, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErrorf("want exactly one recording, got %d arguments (see 'ssekit replay --help')", len(rest))
	}
	if *speed < 0 {
		return usageErrorf("--speed must not be negative")
	}
	f, err := os.Open(rest[0])
	if err != nil {
		return err
	}
	recs, err := debugger.ReadRecords(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", rest[0], err)
	}
	cfg := debugger.ReplayConfig{Speed: *speed}
	if *speed == 0 {
		cfg.Speed = -1
	}
	h, err := debugger.NewReplayHandler(recs, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", rest[0], err)
	}
	events := 0
	for _, r := range recs {
		if r.Kind == debugger.KindEvent {
			events++
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	m.logf("replay", "serving %s from %s at http://%s/ (Ctrl-C stops)", term.Plural(events, "event"), rest[0], ln.Addr())
	return serveStreams(ctx, ln, h)
}
