package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ssekit/sse"
)

const demoUsage = `Usage: ssekit demo [--addr 127.0.0.1:8080]

The example of the article "Implementing Server-Sent Events (SSE) with Python
and Go", made real: open the printed address in a browser.

  GET /         the article's page: an EventSource that shows each message
  GET /events   five sentences, one a second, as events with ids 1 to 5

A client that reconnects with Last-Event-ID gets the sentences after that
id, so a dropped connection loses and repeats nothing. After the fifth the
stream ends, and a reconnection with Last-Event-ID 5 (or more) gets
204 No Content, which tells a browser's EventSource to stop for good instead
of replaying the sentences from the start.
`

// demoSentences is the article's paragraph.
var demoSentences = [...]string{
	"Hello, this is an example of a continuous text output.",
	"It contains multiple sentences, each of which will be sent to the client as an event.",
	"This is to simulate the functionality of Server-Sent Events (SSE).",
	"We can use this method to push real-time updates.",
	"End of sample text, thank you!",
}

//go:embed demo/index.html
var demoPage []byte

// demoConfig configures the demo's handler. The zero value is the article's
// pace.
type demoConfig struct {
	// Interval is the pause between sentences. Zero means one second.
	Interval time.Duration
	// Retry is the reconnection time sent to clients with the first event
	// of each connection. Zero means one second.
	Retry time.Duration
	// Heartbeat is passed to sse.StreamConfig.
	Heartbeat time.Duration
}

func runDemo(ctx context.Context, m *Main, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen on `HOST:PORT` (port 0 picks a free one)")
	interval := fs.Duration("interval", time.Second, "pause between sentences")
	rest, err := m.parseFlags(fs, demoUsage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("takes no arguments, got %q", rest[0])
	}
	if *interval <= 0 {
		return usageErrorf("--interval must be positive")
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	m.logf("demo", "open http://%s/ in a browser (the stream is at /events); Ctrl-C stops", ln.Addr())

	return serveStreams(ctx, ln, newDemoHandler(demoConfig{Interval: *interval}))
}

// serveStreams serves h on ln until ctx is done, then stops: the streams
// end first (the context of every request is cancelled), so that Shutdown,
// which then gets 5 seconds, does not wait for them to finish. Stopping on
// ctx is not an error: it is how demo and replay end.
func serveStreams(ctx context.Context, ln net.Listener, h http.Handler) error {
	streamsCtx, stopStreams := context.WithCancel(context.Background())
	defer stopStreams()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return streamsCtx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stopStreams()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newDemoHandler serves the page at / and the stream at /events.
func newDemoHandler(cfg demoConfig) http.Handler {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(demoPage)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		serveSentences(w, r, cfg)
	})
	return mux
}

// serveSentences streams the sentences after the request's Last-Event-ID,
// one per interval, each with its number (1 to 5) as its id.
func serveSentences(w http.ResponseWriter, r *http.Request, cfg demoConfig) {
	next := 0 // index of the next sentence to send
	if n, err := strconv.Atoi(r.Header.Get("Last-Event-ID")); err == nil && n > 0 {
		next = n // ids count from 1: after id n comes index n
	}
	if next >= len(demoSentences) {
		// Everything was delivered: 204 tells EventSource not to reconnect,
		// where ending the stream again would make it retry forever.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	stream, err := sse.NewStream(w, r, sse.StreamConfig{Heartbeat: cfg.Heartbeat})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer stream.Close()

	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := next; i < len(demoSentences); i++ {
		if i > next {
			timer.Reset(cfg.Interval)
			select {
			case <-timer.C:
			case <-stream.Context().Done():
				return
			}
		}
		ev := sse.Event{ID: strconv.Itoa(i + 1), Data: demoSentences[i]}
		if i == next {
			ev.Retry = cfg.Retry
		}
		if err := stream.Send(ev); err != nil {
			return
		}
	}
	// The stream ends here; the client's reconnection gets 204 above.
}
