package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/ssekit/sse"
)

// Defaults and bounds of the generic mode (StreamConfig).
const (
	DefaultStreamClients     = 10
	DefaultStreamConnectRate = 100
	DefaultStreamDuration    = 10 * time.Second
	DefaultStreamRetry       = time.Second
	// DefaultStreamMaxEvent bounds one event a client buffers, so that
	// clients × the largest event stays well within memory (10000 clients:
	// 2.5 GiB at worst); a larger event ends that stream, counted in Other.
	DefaultStreamMaxEvent = 256 << 10
	// MaxStreamClients bounds the clients of one run: each is an
	// http.Client stream (a goroutine and, over HTTP/1.1, a connection).
	MaxStreamClients = 10000
	// MaxStreamConnectRate bounds the clients started per second.
	MaxStreamConnectRate = 10000
	// MaxStreamDuration bounds one run, whatever the event count.
	MaxStreamDuration = time.Hour
	// MaxStreamEvents bounds the events asked of one client.
	MaxStreamEvents = 1 << 30
)

// ErrNoClient is returned when no client of a generic run ever got a
// stream (every attempt failed).
var ErrNoClient = errors.New("bench: no client could connect")

// StreamConfig describes a run of the generic mode: Clients clients on any
// event-stream endpoint, each an sse.Client (the browser's EventSource
// semantics), started at ConnectRate per second, until each got Events
// events or Duration ended. The zero value of each field but NewRequest
// means its default.
type StreamConfig struct {
	// URL is the endpoint, only for the loopback check and the report: the
	// requests are NewRequest's.
	URL string
	// NewRequest builds one client's request on ctx (method, headers,
	// body); it is called once per client.
	NewRequest func(ctx context.Context) (*http.Request, error)
	// HTTPClient sends the requests; its Transport (nil: the default) is
	// wrapped to time each attempt. Nil means a plain client.
	HTTPClient *http.Client

	// Clients is how many streams to open. Default DefaultStreamClients.
	Clients int
	// ConnectRate is how many clients start per second. Default
	// DefaultStreamConnectRate.
	ConnectRate float64
	// Events, when positive, ends a client once it received that many
	// events; zero runs every client until Duration.
	Events int
	// Duration caps the whole run. Default DefaultStreamDuration.
	Duration time.Duration
	// Retry is the reconnection time until the server sets one, and the
	// wait before a client starts over after a stream failed for good (a
	// status other than 200, a wrong Content-Type). Default
	// DefaultStreamRetry.
	Retry time.Duration
	// MaxEventSize bounds one event (see sse.Client.MaxEventSize). Default
	// DefaultStreamMaxEvent.
	MaxEventSize int
	// AllowRemote permits an endpoint that is not on a loopback address,
	// and redirects to one: without it a redirect off loopback fails the
	// attempt (counted in Other).
	AllowRemote bool
	// Progress, when not nil, gets a line every second.
	Progress io.Writer
}

// StreamReport is what a generic run measured. Its JSON form is one object
// with these snake_case keys.
type StreamReport struct {
	URL         string  `json:"url"`
	Clients     int     `json:"clients"`
	ConnectRate float64 `json:"connect_rate"`
	Events      int     `json:"events_per_client"` // asked; 0: until the duration

	// Connected is the clients that got at least one stream (200,
	// text/event-stream); Completed those that received Events events.
	Connected int `json:"connected"`
	Completed int `json:"completed"`
	// Attempts is every request sent (each client's first and its
	// reconnections; a redirect followed is one more); Reconnects is
	// Attempts − clients started.
	Attempts   int64 `json:"attempts"`
	Reconnects int64 `json:"reconnects"`
	// Errors counts the failed attempts and ended streams by kind.
	Errors     StreamErrors `json:"errors"`
	FirstError string       `json:"first_error,omitempty"`

	// Received is the events over all clients; EventsPerSecond divides it
	// by the run's seconds. A client's rate is its events over its own
	// lifetime (start to stop): PerClient is their mean, MinClient the
	// slowest client's.
	Received        int64   `json:"received"`
	EventsPerSecond float64 `json:"events_per_second"`
	PerClient       float64 `json:"events_per_second_per_client"`
	MinClient       float64 `json:"events_per_second_min_client"`

	// ConnectLatency is one attempt's request to response headers;
	// FirstEvent a client's start to its first event; InterArrival the
	// gap between two events of one connection.
	ConnectLatency Latency `json:"connect_ms"`
	FirstEvent     Latency `json:"first_event_ms"`
	InterArrival   Latency `json:"inter_arrival_ms"`

	Seconds  float64 `json:"seconds"`
	TimedOut bool    `json:"timed_out"` // Duration ended the run before every client completed
}

// StreamErrors counts errors by kind: Status by HTTP status code (a
// response other than 200), ContentType the 200s that were not
// text/event-stream, Network the attempts and streams that failed on the
// network (refused, reset, cut mid-body), EndOfStream the streams the
// server ended cleanly (the client reconnects), Other the rest (an event
// over MaxEventSize, a redirect off loopback).
type StreamErrors struct {
	Status      map[string]int64 `json:"status,omitempty"`
	ContentType int64            `json:"content_type"`
	Network     int64            `json:"network"`
	EndOfStream int64            `json:"end_of_stream"`
	Other       int64            `json:"other"`
}

// streamRun is one generic run's state.
type streamRun struct {
	cfg StreamConfig

	connectLat, firstEvent, interArrival hist

	attempts, received        atomic.Int64
	contentType, network, eos atomic.Int64
	other                     atomic.Int64

	mu        sync.Mutex // guards the fields below
	status    map[int]int64
	firstErr  error
	rates     []float64
	connected int
	completed int
	started   int
}

// timingTransport times each attempt, request to response headers.
type timingTransport struct {
	base http.RoundTripper
	r    *streamRun
}

func (t timingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	t.r.attempts.Add(1)
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		t.r.connectLat.record(time.Since(start))
	}
	return resp, err
}

func (c *StreamConfig) prepare(ctx context.Context) error {
	if c.Clients == 0 {
		c.Clients = DefaultStreamClients
	}
	if c.ConnectRate == 0 {
		c.ConnectRate = DefaultStreamConnectRate
	}
	c.Duration = orDefault(c.Duration, DefaultStreamDuration)
	c.Retry = orDefault(c.Retry, DefaultStreamRetry)
	if c.MaxEventSize == 0 {
		c.MaxEventSize = DefaultStreamMaxEvent
	}
	switch {
	case c.NewRequest == nil:
		return invalid("no request")
	case c.Clients < 0 || c.Clients > MaxStreamClients:
		return invalid("clients must be between 1 and %d; got %d", MaxStreamClients, c.Clients)
	case c.ConnectRate < 0 || c.ConnectRate > MaxStreamConnectRate:
		return invalid("connect rate must be between 0 and %d per second; got %g", MaxStreamConnectRate, c.ConnectRate)
	case c.Events < 0 || c.Events > MaxStreamEvents:
		return invalid("events must be between 0 and %d; got %d", MaxStreamEvents, c.Events)
	case c.Duration < 0 || c.Duration > MaxStreamDuration:
		return invalid("duration must be between 0 and %v; got %v", MaxStreamDuration, c.Duration)
	case c.Retry < 0:
		return invalid("retry must not be negative")
	case c.MaxEventSize < 0 || c.MaxEventSize > sse.DefaultMaxEventSize:
		return invalid("max event size must be between 1 and %d bytes; got %d", sse.DefaultMaxEventSize, c.MaxEventSize)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("URL %q: want an http:// or https:// URL", c.URL)
	}
	loop, _, err := isLoopback(ctx, u.Hostname())
	if !loop && !c.AllowRemote {
		if err != nil {
			return fmt.Errorf("%w: cannot tell whether %q is loopback (%v); pass --allow-remote to load a remote endpoint", ErrRemoteTarget, u.Hostname(), err)
		}
		return fmt.Errorf("%w: %q is not a loopback address; pass --allow-remote to load a remote endpoint on purpose", ErrRemoteTarget, u.Hostname())
	}
	return nil
}

// RunStream runs the generic mode: it starts the clients at the connect
// rate, lets each read until it got its events or the duration ended, and
// reports. The report is not nil once the run started, even when ctx was
// cancelled (a partial report) or no client connected (ErrNoClient).
func RunStream(ctx context.Context, cfg StreamConfig) (*StreamReport, error) {
	if err := cfg.prepare(ctx); err != nil {
		return nil, err
	}
	r := &streamRun{cfg: cfg, status: map[int]int64{}}
	hc := http.Client{}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = timingTransport{base: base, r: r}
	hc.Timeout = 0 // would cut every stream
	if !cfg.AllowRemote {
		hc.CheckRedirect = loopbackRedirects(hc.CheckRedirect)
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	stopProgress := r.progress(start)

	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / cfg.ConnectRate)
	next := start
launch:
	for i := 0; i < cfg.Clients; i++ {
		if d := time.Until(next); d > 0 {
			select {
			case <-runCtx.Done():
				break launch
			case <-time.After(d):
			}
		}
		if runCtx.Err() != nil {
			break
		}
		next = next.Add(interval)
		r.mu.Lock()
		r.started++
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(runCtx, &hc)
		}()
	}
	wg.Wait()
	timedOut := runCtx.Err() != nil && ctx.Err() == nil
	stopProgress()
	rep := r.report(time.Since(start), timedOut)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if rep.Connected == 0 && rep.Clients > 0 {
		return rep, fmt.Errorf("%w: %s", ErrNoClient, rep.FirstError)
	}
	return rep, nil
}

// client is one client's life: streams until it has its events or ctx
// ends, starting over (after Retry) when a stream fails for good.
func (r *streamRun) client(ctx context.Context, hc *http.Client) {
	start := time.Now()
	var (
		got       int
		connected bool
		last      time.Time // the previous event of this connection; zero after a (re)connect
	)
	defer func() {
		secs := time.Since(start).Seconds()
		r.mu.Lock()
		if connected {
			r.connected++
		}
		if r.cfg.Events > 0 && got >= r.cfg.Events {
			r.completed++
		}
		if secs > 0 {
			r.rates = append(r.rates, float64(got)/secs)
		}
		r.mu.Unlock()
	}()
	c := sse.Client{
		HTTPClient:   hc,
		Retry:        r.cfg.Retry,
		MaxEventSize: r.cfg.MaxEventSize,
		OnConnect:    func(*http.Response) { connected = true; last = time.Time{} },
		OnRetry: func(err error, _ time.Duration) {
			last = time.Time{}
			r.count(err)
		},
	}
	for ctx.Err() == nil {
		req, err := r.cfg.NewRequest(ctx)
		if err != nil {
			r.count(err)
			return
		}
		es := c.Connect(req)
		for {
			_, err := es.Next()
			if err != nil {
				es.Close()
				if ctx.Err() != nil {
					return
				}
				r.count(err)
				break
			}
			now := time.Now()
			if got == 0 {
				r.firstEvent.record(now.Sub(start))
			}
			if !last.IsZero() {
				r.interArrival.record(now.Sub(last))
			}
			last = now
			got++
			r.received.Add(1)
			if r.cfg.Events > 0 && got >= r.cfg.Events {
				es.Close()
				return
			}
		}
		select { // the stream failed for good: start over after Retry
		case <-ctx.Done():
			return
		case <-time.After(r.cfg.Retry):
		}
	}
}

// loopbackRedirects wraps a CheckRedirect (nil: net/http's) to refuse a
// redirect off loopback: a load generator must not be sent to someone
// else's server by the endpoint it loads.
func loopbackRedirects(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if loop, _, _ := isLoopback(req.Context(), req.URL.Hostname()); !loop {
			return fmt.Errorf("%w: redirected to %q; pass --allow-remote to follow it", ErrRemoteTarget, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// count files an error by kind.
func (r *streamRun) count(err error) {
	var (
		statusErr *sse.StatusError
		typeErr   *sse.ContentTypeError
	)
	switch {
	case errors.As(err, &statusErr):
		r.mu.Lock()
		r.status[statusErr.StatusCode]++
		r.mu.Unlock()
	case errors.As(err, &typeErr):
		r.contentType.Add(1)
	case errors.Is(err, io.EOF):
		r.eos.Add(1)
		return // a clean end is not a failure
	case errors.Is(err, sse.ErrEventTooLarge), errors.Is(err, sse.ErrRestart), errors.Is(err, ErrRemoteTarget):
		r.other.Add(1)
	default:
		r.network.Add(1)
	}
	r.mu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.mu.Unlock()
}

func (r *streamRun) progress(start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(DefaultProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.mu.Lock()
				started := r.started
				r.mu.Unlock()
				fmt.Fprintf(r.cfg.Progress, "%5.1fs  %d clients started, %d attempts, %d events\n",
					time.Since(start).Seconds(), started, r.attempts.Load(), r.received.Load())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (r *streamRun) report(took time.Duration, timedOut bool) *StreamReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &StreamReport{
		URL:            r.cfg.URL,
		Clients:        r.started,
		ConnectRate:    r.cfg.ConnectRate,
		Events:         r.cfg.Events,
		Connected:      r.connected,
		Completed:      r.completed,
		Attempts:       r.attempts.Load(),
		Reconnects:     max(r.attempts.Load()-int64(r.started), 0),
		Received:       r.received.Load(),
		ConnectLatency: newLatency(summarize(&r.connectLat)),
		FirstEvent:     newLatency(summarize(&r.firstEvent)),
		InterArrival:   newLatency(summarize(&r.interArrival)),
		Seconds:        took.Seconds(),
		TimedOut:       timedOut && (r.cfg.Events == 0 || r.completed < r.started),
	}
	rep.Errors = StreamErrors{
		ContentType: r.contentType.Load(),
		Network:     r.network.Load(),
		EndOfStream: r.eos.Load(),
		Other:       r.other.Load(),
	}
	if len(r.status) > 0 {
		rep.Errors.Status = map[string]int64{}
		for code, n := range r.status {
			rep.Errors.Status[strconv.Itoa(code)] = n
		}
	}
	if r.firstErr != nil {
		rep.FirstError = r.firstErr.Error()
	}
	if s := took.Seconds(); s > 0 {
		rep.EventsPerSecond = float64(rep.Received) / s
	}
	var sum float64
	for i, v := range r.rates {
		sum += v
		if i == 0 || v < rep.MinClient {
			rep.MinClient = v
		}
	}
	if len(r.rates) > 0 {
		rep.PerClient = sum / float64(len(r.rates))
	}
	return rep
}

// WriteJSON writes the report as one line of JSON.
func (rep *StreamReport) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(rep)
}

// WriteText writes the report as a table for people.
func (rep *StreamReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	row("url", "%s", rep.URL)
	events := "until the duration"
	if rep.Events > 0 {
		events = fmt.Sprintf("%d events each", rep.Events)
	}
	row("setup", "%d %s at %g/s, %s", rep.Clients, plural(rep.Clients, "client", "clients"), rep.ConnectRate, events)
	row("connected", "%d of %d; %d completed; connect %s", rep.Connected, rep.Clients, rep.Completed, rep.ConnectLatency)
	row("attempts", "%d (%d reconnects)", rep.Attempts, rep.Reconnects)
	e := rep.Errors
	codes := make([]string, 0, len(e.Status))
	for c := range e.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	status := "none"
	if len(codes) > 0 {
		status = ""
		for i, c := range codes {
			if i > 0 {
				status += ", "
			}
			status += fmt.Sprintf("%s×%d", c, e.Status[c])
		}
	}
	row("errors", "status %s; content type %d; network %d; other %d; clean ends %d", status, e.ContentType, e.Network, e.Other, e.EndOfStream)
	if rep.FirstError != "" {
		row("", "first error: %s", rep.FirstError)
	}
	row("events", "%d: %.1f/s total, %.2f/s per client (mean; slowest %.2f/s)", rep.Received, rep.EventsPerSecond, rep.PerClient, rep.MinClient)
	row("first event", "%s (client start to first event)", rep.FirstEvent)
	row("inter-arrival", "%s (between events of one connection)", rep.InterArrival)
	if rep.TimedOut {
		row("timed out", "the duration ended the run before every client completed")
	}
	row("took", "%.1fs", rep.Seconds)
	return tw.Flush()
}
