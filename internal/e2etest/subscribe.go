package e2etest

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse"
)

// Stream is one open subscription.
type Stream struct {
	Resp *http.Response
	Dec  *sse.Decoder
	stop context.CancelFunc
}

// OpenStream opens a subscription to hubURL?query with c, sending
// lastEventID as the Last-Event-ID header when it is not empty, and fails
// the test unless the answer is a 200 event stream. The stream is given up
// after timeout, so that a missing event fails the test instead of hanging
// it; it is closed when the test ends.
func OpenStream(t *testing.T, c *http.Client, hubURL, query, lastEventID string, timeout time.Duration) *Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hubURL+"?"+query, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("subscribing to %s?%s: %v", hubURL, query, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("subscribing to %s?%s: %s %s: %s", hubURL, query, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	s := &Stream{Resp: resp, Dec: sse.NewDecoder(resp.Body), stop: cancel}
	t.Cleanup(s.Close)
	return s
}

// Close ends the stream.
func (s *Stream) Close() {
	s.stop()
	s.Resp.Body.Close()
}

// Next returns the next event, failing the test on an error.
func (s *Stream) Next(t *testing.T) sse.Event {
	t.Helper()
	ev, err := s.Dec.Next()
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return ev
}

// Until reads events up to and including the one with the given id.
func (s *Stream) Until(t *testing.T, id string) []sse.Event {
	t.Helper()
	var got []sse.Event
	for {
		ev := s.Next(t)
		got = append(got, ev)
		if ev.ID == id {
			return got
		}
	}
}

// Subscriber reads one stream at a time from a list of hubs; when a
// stream ends it reconnects to the next hub with its Last-Event-ID, as
// EventSource does, and keeps every id it received.
type Subscriber struct {
	hubs   []*Hub
	topic  string
	cancel context.CancelFunc
	done   chan struct{}
	opened chan struct{} // closed once the first stream is open
	wake   chan struct{} // signalled on each event received

	mu      sync.Mutex
	ids     []string // guarded by mu: every id received, in order
	lastID  string   // guarded by mu
	streams []string // guarded by mu: the hub of each stream opened (200)
}

// Subscribe starts a subscriber as StartSubscriber does, and waits until
// its first stream is open.
func Subscribe(t *testing.T, hubs []*Hub, first int, topic, lastEventID string) *Subscriber {
	t.Helper()
	s := StartSubscriber(t, hubs, first, topic, lastEventID)
	select {
	case <-s.opened:
	case <-time.After(Timeout):
		t.Fatalf("subscriber to %s: no stream opened in %v", topic, Timeout)
	}
	return s
}

// StartSubscriber starts a subscriber to topic on hubs[first], sending
// lastEventID on its first request when it is not empty, without waiting
// for its stream. It stops when the test ends, or at Stop.
func StartSubscriber(t *testing.T, hubs []*Hub, first int, topic, lastEventID string) *Subscriber {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscriber{hubs: hubs, topic: topic, cancel: cancel, done: make(chan struct{}),
		opened: make(chan struct{}), wake: make(chan struct{}, 1), lastID: lastEventID}
	go s.run(ctx, first)
	t.Cleanup(s.Stop)
	return s
}

// Topic is the topic it subscribed to.
func (s *Subscriber) Topic() string { return s.topic }

// Stop ends its stream and its reconnections.
func (s *Subscriber) Stop() {
	s.cancel()
	<-s.done
}

func (s *Subscriber) run(ctx context.Context, i int) {
	defer close(s.done)
	var once sync.Once
	for attempt := 0; ctx.Err() == nil && attempt < 2000; attempt++ {
		s.stream(ctx, s.hubs[i%len(s.hubs)], func() { once.Do(func() { close(s.opened) }) })
		i++
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond): // as a client's retry
		}
	}
}

// stream reads one stream from h until it ends.
func (s *Subscriber) stream(ctx context.Context, h *Hub, opened func()) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL()+"?topic="+url.QueryEscape(s.topic), nil)
	s.mu.Lock()
	last := s.lastID
	s.mu.Unlock()
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	s.mu.Lock()
	s.streams = append(s.streams, h.Addr)
	s.mu.Unlock()
	opened()
	d := sse.NewDecoder(bufio.NewReader(resp.Body))
	for {
		ev, err := d.Next()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.ids = append(s.ids, ev.ID)
		s.lastID = ev.ID
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// IDs returns the ids received so far, in order.
func (s *Subscriber) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// Streams returns the address of the hub of each stream it opened, in
// order: one stream unless it had to reconnect.
func (s *Subscriber) Streams() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.streams)
}

// WaitIDs waits up to Timeout until the subscriber has received every id
// in want (and maybe more), and returns what it received; it fails the
// test, naming the first ids missing, after that.
func (s *Subscriber) WaitIDs(t *testing.T, want []string) []string {
	t.Helper()
	deadline := time.After(Timeout)
	for {
		got := s.IDs()
		seen := make(map[string]bool, len(got))
		for _, id := range got {
			seen[id] = true
		}
		var missing []string
		for _, id := range want {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return got
		}
		select {
		case <-s.wake:
		case <-deadline:
			t.Fatalf("subscriber to %s: %d of %d ids missing after %v, first %q; streams on %v",
				s.topic, len(missing), len(want), Timeout, missing[:min(5, len(missing))], s.Streams())
		}
	}
}

// CheckExactly checks that got holds want's ids exactly once each, in
// want's order: it reports, naming who, the ids lost, those received more
// than once, those never published and, when there are none, an order
// other than want's. It reports whether got is want.
func CheckExactly(t testing.TB, who string, got, want []string) bool {
	t.Helper()
	published := make(map[string]bool, len(want))
	for _, id := range want {
		published[id] = true
	}
	seen := make(map[string]int, len(got))
	var dups, extra []string
	for _, id := range got {
		if seen[id]++; seen[id] == 2 {
			dups = append(dups, id)
		}
		if !published[id] && seen[id] == 1 {
			extra = append(extra, id)
		}
	}
	var lost []string
	for _, id := range want {
		if seen[id] == 0 {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 || len(dups) > 0 || len(extra) > 0 {
		t.Errorf("%s: %d events; want %d: lost %d %q, duplicated %d %q, never published %d %q",
			who, len(got), len(want), len(lost), lost, len(dups), dups, len(extra), extra)
		return false
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: order differs from publish order:\n got %q\nwant %q", who, got, want)
		return false
	}
	return true
}
