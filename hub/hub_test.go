package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse"
)

const waitTimeout = 10 * time.Second

// recMetrics records what the hub reports.
type recMetrics struct {
	mu           sync.Mutex
	connected    int
	disconnected map[string]int
	published    int
	delivered    int
	replays      map[bool]int
	depths       []int
}

func newRecMetrics() *recMetrics {
	return &recMetrics{disconnected: map[string]int{}, replays: map[bool]int{}}
}

func (m *recMetrics) SubscriberConnected() { m.mu.Lock(); m.connected++; m.mu.Unlock() }
func (m *recMetrics) SubscriberDisconnected(r string) {
	m.mu.Lock()
	m.disconnected[r]++
	m.mu.Unlock()
}
func (m *recMetrics) Published(time.Duration) { m.mu.Lock(); m.published++; m.mu.Unlock() }
func (m *recMetrics) Delivered(n int)         { m.mu.Lock(); m.delivered += n; m.mu.Unlock() }
func (m *recMetrics) Replay(hit bool)         { m.mu.Lock(); m.replays[hit]++; m.mu.Unlock() }
func (m *recMetrics) QueueDepth(n int)        { m.mu.Lock(); m.depths = append(m.depths, n); m.mu.Unlock() }

func (m *recMetrics) disconnects(reason string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.disconnected[reason]
}

func newHub(t testing.TB, cfg Config) *Hub {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	return h
}

// client is a subscriber with the reading side a server would have.
type client struct {
	*Subscriber
	info    ReplayInfo
	wake    chan struct{}
	buf     []byte
	err     error
	notifyN int // guarded by mu
	mu      sync.Mutex
}

func subscribe(t testing.TB, h *Hub, req SubscribeRequest) *client {
	t.Helper()
	c := &client{wake: make(chan struct{}, 1)}
	req.Notify = func() {
		c.mu.Lock()
		c.notifyN++
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	s, info, err := h.Subscribe(context.Background(), req)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", req.Selectors, err)
	}
	c.Subscriber, c.info = s, info
	t.Cleanup(s.Close)
	return c
}

func (c *client) drain() {
	c.buf, c.err = c.Drain(c.buf)
}

// events decodes what the client has drained so far.
func (c *client) events(t testing.TB) []sse.Event {
	t.Helper()
	var evs []sse.Event
	for ev, err := range sse.NewDecoder(bytes.NewReader(c.buf)).Events() {
		if err != nil {
			t.Fatalf("decoding the stream: %v", err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// waitEvents drains until the client has n events or the hub ended it.
func (c *client) waitEvents(t testing.TB, n int) []sse.Event {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		c.drain()
		evs := c.events(t)
		if len(evs) >= n || c.err != nil {
			return evs
		}
		select {
		case <-c.wake:
		case <-deadline:
			t.Fatalf("timed out with %d events; want %d", len(evs), n)
		}
	}
}

func ids(evs []sse.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// publish publishes u and waits until the hub has fanned it out, so a
// test can look at the queues at once.
func publish(t testing.TB, h *Hub, u *Update) string {
	t.Helper()
	id, err := h.Publish(context.Background(), u)
	if err != nil {
		t.Fatalf("Publish(%q): %v", u.ID, err)
	}
	waitFannedOut(t, h, u.Seq)
	return id
}

// waitFannedOut returns once the fan-out goroutine has delivered every
// update up to seq.
func waitFannedOut(t testing.TB, h *Hub, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if h.fanned.Load() >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("update %d not fanned out within %v", seq, waitTimeout)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func TestPublishValidation(t *testing.T) {
	h := newHub(t, Config{})
	tests := []struct {
		name   string
		u      Update
		reason string
	}{
		{"NoTopic", Update{Data: "x"}, "no topic"},
		{"EmptyTopic", Update{Topics: []string{"a", ""}}, "empty topic"},
		{"HashID", Update{ID: "#1", Topics: []string{"a"}}, "id starts with #"},
		{"LFInID", Update{ID: "a\nb", Topics: []string{"a"}}, "id contains the control or format character U+000A"},
		{"CRInID", Update{ID: "a\rb", Topics: []string{"a"}}, "id contains the control or format character U+000D"},
		{"NULInID", Update{ID: "a\x00b", Topics: []string{"a"}}, "id contains the control or format character U+0000"},
		{"TabInID", Update{ID: "a\tb", Topics: []string{"a"}}, "id contains the control or format character U+0009"},
		{"C1InID", Update{ID: "a\u0085b", Topics: []string{"a"}}, "id contains the control or format character U+0085"},
		{"BidiInID", Update{ID: "a\u202eb", Topics: []string{"a"}}, "id contains the control or format character U+202E"},
		{"ZeroWidthInID", Update{ID: "a\u200bb", Topics: []string{"a"}}, "id contains the control or format character U+200B"},
		{"BOMInID", Update{ID: "\ufeffa", Topics: []string{"a"}}, "id contains the control or format character U+FEFF"},
		{"InvalidUTF8ID", Update{ID: "a\xffb", Topics: []string{"a"}}, "id is not valid UTF-8"},
		{"EarliestID", Update{ID: "earliest", Topics: []string{"a"}}, `id "earliest" is reserved (it asks for the whole history)`},
		{"LongID", Update{ID: strings.Repeat("i", MaxIDLength+1), Topics: []string{"a"}}, "id of 1025 bytes, longer than 1024"},
		{"LFInType", Update{Type: "a\nb", Topics: []string{"a"}}, "type contains the control or format character U+000A"},
		{"NULInType", Update{Type: "a\x00b", Topics: []string{"a"}}, "type contains the control or format character U+0000"},
		{"DELInType", Update{Type: "a\x7fb", Topics: []string{"a"}}, "type contains the control or format character U+007F"},
		{"LongType", Update{Type: strings.Repeat("t", MaxTypeLength+1), Topics: []string{"a"}}, "type of 257 bytes, longer than 256"},
		{"LongTopic", Update{Topics: []string{"a", strings.Repeat("t", MaxTopicLength+1)}}, "topic of 4097 bytes, longer than 4096"},
		{"NegativeRetry", Update{Retry: -time.Second, Topics: []string{"a"}}, "negative retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Publish(context.Background(), &tt.u)
			if !errors.Is(err, ErrInvalidUpdate) {
				t.Fatalf("Publish: got %v; want ErrInvalidUpdate", err)
			}
			if want := "hub: invalid update: " + tt.reason; err.Error() != want {
				t.Errorf("error: got %q; want %q", err, want)
			}
		})
	}
}

func TestPublishIDs(t *testing.T) {
	h := newHub(t, Config{})
	u := &Update{Topics: []string{"a"}, Data: "x"}
	id := publish(t, h, u)
	if !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("generated id %q; want urn:uuid:<v7>", id)
	}
	time.Sleep(2 * time.Millisecond) // the next millisecond: ids sort by time
	if later := publish(t, h, &Update{Topics: []string{"a"}}); later <= id {
		t.Errorf("id generated later %q sorts before %q; want time order (a store's index appends)", later, id)
	}
	if u.ID != id || u.Seq == 0 || u.Time.IsZero() {
		t.Errorf("after Publish: u.ID %q, Seq %d, Time %v; want the stored id, Seq and Time", u.ID, u.Seq, u.Time)
	}
	if id2 := publish(t, h, &Update{Topics: []string{"a"}}); id2 == id {
		t.Errorf("two generated ids are both %q", id)
	}
	if got := publish(t, h, &Update{ID: "mine", Topics: []string{"a"}}); got != "mine" {
		t.Errorf("Publish with an id returned %q; want mine", got)
	}
	// Draft-08: a reused id is accepted; an exact retry is stored once.
	if got := publish(t, h, &Update{ID: "mine", Topics: []string{"a"}}); got != "mine" {
		t.Errorf("retry of an update returned %q; want mine", got)
	}
	if got := publish(t, h, &Update{ID: "mine", Topics: []string{"a"}, Data: "other"}); got != "mine" {
		t.Errorf("Publish of a reused id returned %q; want mine", got)
	}
	p, err := h.store.After(context.Background(), Cursor{ID: "mine"}, DefaultPageBytes)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range p.Updates {
		ids = append(ids, WireID(u.ID)+"="+u.Data)
	}
	if !slices.Equal(ids, []string{"mine=other"}) {
		t.Errorf("after the first mine: %q; want the reuse only (the retry stored once)", ids)
	}
}

func TestDeliveryWireFormat(t *testing.T) {
	h := newHub(t, Config{})
	c := subscribe(t, h, SubscribeRequest{Selectors: []string{"https://example.com/books/1"}})
	publish(t, h, &Update{ID: "1", Topics: []string{"https://example.com/books/1"}, Data: "a\nb"})
	publish(t, h, &Update{ID: "2", Topics: []string{"https://example.com/books/2"}, Data: "other"})
	publish(t, h, &Update{ID: "3", Topics: []string{"https://example.com/books/1"}, Type: "t", Retry: 2 * time.Second})
	c.waitEvents(t, 2)
	want := "id:1\ndata:a\ndata:b\n\nid:3\nevent:t\nretry:2000\ndata:\n\n"
	if string(c.buf) != want {
		t.Errorf("stream:\n got %q\nwant %q", c.buf, want)
	}
}

func TestGeneratedIDAlwaysSent(t *testing.T) {
	h := newHub(t, Config{})
	c := subscribe(t, h, SubscribeRequest{Selectors: []string{"a"}})
	id := publish(t, h, &Update{Topics: []string{"a"}, Data: "x"})
	if evs := c.waitEvents(t, 1); evs[0].ID != id {
		t.Errorf("event id %q; want %q", evs[0].ID, id)
	}
}

// TestEncodedOnce checks that every subscriber of an update queues the same
// bytes: the update was encoded once.
func TestEncodedOnce(t *testing.T) {
	h := newHub(t, Config{})
	var subs []*client
	for _, sel := range []string{"a", "a", "*", "{x}", "b"} {
		subs = append(subs, subscribe(t, h, SubscribeRequest{Selectors: []string{sel}}))
	}
	publish(t, h, &Update{ID: "1", Topics: []string{"a", "b"}, Data: strings.Repeat("x", 100)})
	var first *byte
	for i, c := range subs {
		c.mu.Lock()
		c.Subscriber.mu.Lock()
		if len(c.queue) != 1 {
			t.Fatalf("subscriber %d: %d queued; want 1", i, len(c.queue))
		}
		p := &c.queue[0].f.b[0]
		c.Subscriber.mu.Unlock()
		c.mu.Unlock()
		if first == nil {
			first = p
		} else if p != first {
			t.Errorf("subscriber %d queued its own copy of the bytes; want the shared encoding", i)
		}
	}
}

func TestMatching(t *testing.T) {
	h := newHub(t, Config{})
	tests := []struct {
		name      string
		selectors []string
		want      []string
	}{
		{"Exact", []string{"https://example.com/books/1"}, []string{"1", "4"}},
		{"Template", []string{"https://example.com/books/{id}"}, []string{"1", "2", "4"}},
		{"All", []string{"*"}, []string{"1", "2", "3", "4"}},
		{"AlternateTopic", []string{"urn:alt"}, []string{"3"}},
		{"SeveralSelectorsOnce", []string{"https://example.com/books/1", "https://example.com/books/{id}", "*"}, []string{"1", "2", "3", "4"}},
		{"None", []string{"nothing"}, nil},
	}
	clients := make([]*client, len(tests))
	for i, tt := range tests {
		clients[i] = subscribe(t, h, SubscribeRequest{Selectors: tt.selectors})
	}
	publish(t, h, &Update{ID: "1", Topics: []string{"https://example.com/books/1"}})
	publish(t, h, &Update{ID: "2", Topics: []string{"https://example.com/books/2"}})
	publish(t, h, &Update{ID: "3", Topics: []string{"https://example.com/books/3/reviews", "urn:alt"}})
	publish(t, h, &Update{ID: "4", Topics: []string{"https://example.com/books/1", "https://example.com/books/1", "urn:x"}})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clients[i].drain()
			if got := ids(clients[i].events(t)); !slices.Equal(got, tt.want) {
				t.Errorf("received %v; want %v", got, tt.want)
			}
		})
	}
}

func TestPrivateUpdates(t *testing.T) {
	h := newHub(t, Config{})
	tests := []struct {
		name   string
		claims *Claims
		want   []string
	}{
		{"Anonymous", nil, []string{"public"}},
		{"NoSubscribeClaim", &Claims{}, []string{"public"}},
		{"OtherTopic", &Claims{Subscribe: []string{"https://example.com/users/{id}"}}, []string{"public"}},
		{"ExactTopic", &Claims{Subscribe: []string{"https://example.com/books/1"}}, []string{"public", "private", "private-alt"}},
		{"AlternateTopic", &Claims{Subscribe: []string{"urn:alt"}}, []string{"public", "private-alt"}},
		{"Template", &Claims{Subscribe: []string{"https://example.com/books/{id}"}}, []string{"public", "private", "private-alt"}},
		{"All", &Claims{Subscribe: []string{"*"}}, []string{"public", "private", "private-alt"}},
	}
	// Published before and after subscribing: replay and live must agree.
	updates := []*Update{
		{ID: "public", Topics: []string{"https://example.com/books/1"}},
		{ID: "private", Topics: []string{"https://example.com/books/1"}, Private: true},
		{ID: "private-alt", Topics: []string{"https://example.com/books/1", "urn:alt"}, Private: true},
	}
	live := make([]*client, len(tests))
	for i, tt := range tests {
		live[i] = subscribe(t, h, SubscribeRequest{Selectors: []string{"https://example.com/books/{id}"}, Claims: tt.claims})
	}
	for _, u := range updates {
		publish(t, h, u)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live[i].drain()
			if got := ids(live[i].events(t)); !slices.Equal(got, tt.want) {
				t.Errorf("live: received %v; want %v", got, tt.want)
			}
			replay := subscribe(t, h, SubscribeRequest{Selectors: []string{"https://example.com/books/{id}"}, Claims: tt.claims, LastEventID: "earliest"})
			replay.drain()
			if got := ids(replay.events(t)); !slices.Equal(got, tt.want) {
				t.Errorf("replay: received %v; want %v", got, tt.want)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	h := newHub(t, Config{})
	for i := range 5 {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"a"}})
	}
	publish(t, h, &Update{ID: "other", Topics: []string{"b"}})
	tests := []struct {
		name        string
		lastEventID string
		want        []string
		info        ReplayInfo
	}{
		{"LiveOnly", "", nil, ReplayInfo{ResumedAfter: "other", Found: true}},
		{"Earliest", "earliest", []string{"0", "1", "2", "3", "4"}, ReplayInfo{ResumedAfter: "earliest", Found: true}},
		{"Known", "2", []string{"3", "4"}, ReplayInfo{ResumedAfter: "2", Found: true}},
		{"Last", "other", nil, ReplayInfo{ResumedAfter: "other", Found: true}},
		{"Unknown", "nope", []string{"0", "1", "2", "3", "4"}, ReplayInfo{ResumedAfter: "earliest", Found: false}},
		{"LongerThanAnyID", strings.Repeat("x", MaxIDLength+1), []string{"0", "1", "2", "3", "4"}, ReplayInfo{ResumedAfter: "earliest", Found: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := subscribe(t, h, SubscribeRequest{Selectors: []string{"a"}, LastEventID: tt.lastEventID})
			if c.info != tt.info {
				t.Errorf("ReplayInfo: got %+v; want %+v", c.info, tt.info)
			}
			c.drain()
			if got := ids(c.events(t)); !slices.Equal(got, tt.want) {
				t.Errorf("replayed %v; want %v", got, tt.want)
			}
		})
	}
	t.Run("EmptyHistory", func(t *testing.T) {
		h := newHub(t, Config{})
		for _, id := range []string{"", "earliest", "x"} {
			c := subscribe(t, h, SubscribeRequest{Selectors: []string{"a"}, LastEventID: id})
			if c.info.ResumedAfter != "earliest" {
				t.Errorf("LastEventID %q on an empty hub: ResumedAfter %q; want earliest", id, c.info.ResumedAfter)
			}
		}
	})
}

// TestReplayThenLive subscribes with a Last-Event-ID while publishers run,
// many times, and checks every subscriber sees each update after its
// resume point once, in order.
func TestReplayThenLive(t *testing.T) {
	const total, subscribers = 2000, 40
	m := newRecMetrics()
	h := newHub(t, Config{QueueSize: total + 10, Metrics: m})
	ctx := context.Background()
	publish(t, h, &Update{ID: "0", Topics: []string{"t"}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < total; i++ {
			if _, err := h.Publish(ctx, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}}); err != nil {
				t.Errorf("Publish: %v", err)
				return
			}
		}
	}()
	var clients []*client
	var from []int
	for i := 0; i < subscribers; i++ {
		last := h.LastEventID()
		var n int
		fmt.Sscan(last, &n)
		from = append(from, n+1)
		clients = append(clients, subscribe(t, h, SubscribeRequest{Selectors: []string{"t", "{x}"}, LastEventID: last}))
	}
	<-done
	for i, c := range clients {
		evs := c.waitEvents(t, total-from[i])
		if c.err != nil {
			t.Fatalf("subscriber %d ended: %v", i, c.err)
		}
		for j, e := range evs {
			if want := fmt.Sprint(from[i] + j); e.ID != want {
				t.Fatalf("subscriber %d resuming at %d: event %d is %q; want %q (no gap, no duplicate)", i, from[i], j, e.ID, want)
			}
		}
		if len(evs) != total-from[i] {
			t.Errorf("subscriber %d: %d events; want %d", i, len(evs), total-from[i])
		}
	}
}

func TestSlowSubscriber(t *testing.T) {
	m := newRecMetrics()
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	h := newHub(t, Config{QueueSize: 4, Metrics: m, Logger: logger})
	slow := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}, RemoteAddr: "192.0.2.1:1234"})
	fast := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}})
	for i := range 10 {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}})
		fast.drain()
	}
	if got, want := ids(fast.events(t)), []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}; !slices.Equal(got, want) || fast.err != nil {
		t.Errorf("fast subscriber: %v, %v; want %v, nil", got, fast.err, want)
	}
	select {
	case <-slow.wake:
	default:
		t.Errorf("slow subscriber not notified of its end")
	}
	slow.drain()
	if !errors.Is(slow.err, ErrSlowSubscriber) {
		t.Errorf("slow subscriber Drain: %v; want ErrSlowSubscriber", slow.err)
	}
	if got, want := ids(slow.events(t)), []string{"0", "1", "2", "3"}; !slices.Equal(got, want) {
		t.Errorf("slow subscriber got %v; want what fitted its queue, %v", got, want)
	}
	if n := m.disconnects(DisconnectSlow); n != 1 {
		t.Errorf("slow disconnects counted: %d; want 1", n)
	}
	slow.Close()
	if n := m.disconnects(DisconnectGone); n != 0 {
		t.Errorf("Close of an ended subscriber counted as gone %d times; want 0", n)
	}
	logMu.Lock()
	log := logs.String()
	logMu.Unlock()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, slow.ID()) || !strings.Contains(log, "192.0.2.1:1234") {
		t.Errorf("log %q; want a warning with the subscriber id and remote address", log)
	}
	if subs := h.Subscriptions(); len(subs) != 1 || subs[0].Subscriber != fast.ID() {
		t.Errorf("subscriptions after a slow disconnect: %+v; want only the fast one", subs)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestNotifyCoalesced(t *testing.T) {
	h := newHub(t, Config{})
	c := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}})
	for i := range 5 {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}})
	}
	c.mu.Lock()
	n := c.notifyN
	c.mu.Unlock()
	if n != 1 {
		t.Errorf("Notify called %d times for 5 updates before a Drain; want 1", n)
	}
	c.drain()
	if got := len(c.events(t)); got != 5 {
		t.Errorf("one Drain returned %d events; want all 5", got)
	}
	publish(t, h, &Update{ID: "5", Topics: []string{"t"}})
	c.mu.Lock()
	n = c.notifyN
	c.mu.Unlock()
	if n != 2 {
		t.Errorf("Notify called %d times; want 2 (again after the Drain)", n)
	}
}

func TestCloseUnregisters(t *testing.T) {
	m := newRecMetrics()
	h := newHub(t, Config{Metrics: m})
	a := subscribe(t, h, SubscribeRequest{Selectors: []string{"x", "{y}", "*"}})
	b := subscribe(t, h, SubscribeRequest{Selectors: []string{"x"}})
	a.Close()
	a.Close()
	b.EndExpired()
	if subs := h.Subscriptions(); len(subs) != 0 {
		t.Errorf("subscriptions after Close: %+v; want none", subs)
	}
	h.mu.RLock()
	nexact, npat := len(h.exact), len(h.patterns)
	h.mu.RUnlock()
	if nexact != 0 || npat != 0 {
		t.Errorf("index after every Close: %d exact, %d pattern groups; want none", nexact, npat)
	}
	if g, a := m.disconnects(DisconnectGone), m.disconnects(DisconnectAuth); g != 1 || a != 1 {
		t.Errorf("disconnects: gone %d, auth %d; want 1 and 1", g, a)
	}
	publish(t, h, &Update{ID: "1", Topics: []string{"x"}})
	if buf, err := a.Drain(nil); len(buf) != 0 || err != nil {
		t.Errorf("Drain after Close: %q, %v; want nothing", buf, err)
	}
}

// TestIndexConsistent subscribes and closes at random, then checks the
// index agrees with itself.
func TestIndexConsistent(t *testing.T) {
	h := newHub(t, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	selectors := []string{"a", "b", "c", "{x}", "*", "d/{x}"}
	var live []*Subscriber
	for range 2000 {
		if len(live) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(live))
			live[i].Close()
			live = slices.Delete(live, i, i+1)
			continue
		}
		var sels []string
		for range 1 + rng.IntN(3) {
			sels = append(sels, selectors[rng.IntN(len(selectors))])
		}
		s, _, err := h.Subscribe(context.Background(), SubscribeRequest{Selectors: sels})
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, s)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.subs) != len(live) {
		t.Fatalf("%d registered; want %d", len(h.subs), len(live))
	}
	members := 0
	for s := range h.subs {
		for _, m := range s.members {
			members++
			if m.g.subs[m.i] != s {
				t.Fatalf("subscriber %s: membership of %q points at index %d, held by another", s.ID(), m.g.sel, m.i)
			}
		}
	}
	n := 0
	for _, g := range h.exact {
		n += len(g.subs)
	}
	for i, g := range h.patterns {
		n += len(g.subs)
		if g.idx != i || h.patternIdx[g.sel.raw] != g {
			t.Fatalf("pattern group %q: idx %d at position %d", g.sel, g.idx, i)
		}
	}
	if n != members {
		t.Fatalf("groups hold %d entries; subscribers have %d memberships", n, members)
	}
}

func TestShutdown(t *testing.T) {
	m := newRecMetrics()
	h, err := New(Config{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	a := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}})
	b := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}})
	publish(t, h, &Update{ID: "1", Topics: []string{"t"}})
	b.Close()
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-a.wake:
	default:
		t.Errorf("subscriber not notified of the shutdown")
	}
	a.drain()
	if !errors.Is(a.err, ErrHubClosed) || len(a.events(t)) != 1 {
		t.Errorf("Drain after Shutdown: %d events, %v; want the queued one, ErrHubClosed", len(a.events(t)), a.err)
	}
	if n := m.disconnects(DisconnectShutdown); n != 1 {
		t.Errorf("shutdown disconnects: %d; want 1", n)
	}
	if _, err := h.Publish(context.Background(), &Update{Topics: []string{"t"}}); !errors.Is(err, ErrHubClosed) {
		t.Errorf("Publish after Shutdown: %v; want ErrHubClosed", err)
	}
	if _, _, err := h.Subscribe(context.Background(), SubscribeRequest{Selectors: []string{"t"}}); !errors.Is(err, ErrHubClosed) {
		t.Errorf("Subscribe after Shutdown: %v; want ErrHubClosed", err)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	a.Close()
	if n := m.disconnects(DisconnectGone); n != 1 {
		t.Errorf("gone disconnects: %d; want 1 (b only)", n)
	}
}

func TestSubscribeErrors(t *testing.T) {
	h := newHub(t, Config{})
	if _, _, err := h.Subscribe(context.Background(), SubscribeRequest{}); !errors.Is(err, ErrNoSelector) {
		t.Errorf("Subscribe without selectors: %v; want ErrNoSelector", err)
	}
	long := SubscribeRequest{Selectors: []string{"a", strings.Repeat("s", MaxTopicLength+1)}}
	if _, _, err := h.Subscribe(context.Background(), long); !errors.Is(err, ErrSelectorTooLong) {
		t.Errorf("Subscribe with a selector over MaxTopicLength: %v; want ErrSelectorTooLong", err)
	}
	// Each selector within its limit, together over the subscription's.
	var many SubscribeRequest
	for i := range MaxSubscriptionSelectorBytes/MaxSelectorLength + 1 {
		many.Selectors = append(many.Selectors, fmt.Sprintf("%d/%s", i, strings.Repeat("s", MaxSelectorLength-8)))
	}
	if _, _, err := h.Subscribe(context.Background(), many); !errors.Is(err, ErrSelectorTooLong) {
		t.Errorf("Subscribe with %d selectors of %d bytes: %v; want ErrSelectorTooLong", len(many.Selectors), MaxSelectorLength-6, err)
	}
	many.Selectors = many.Selectors[:len(many.Selectors)-1]
	s, _, err := h.Subscribe(context.Background(), many)
	if err != nil {
		t.Fatalf("Subscribe with %d selectors, together under the limit: %v", len(many.Selectors), err)
	}
	s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 100 {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}})
	}
	if _, _, err := h.Subscribe(ctx, SubscribeRequest{Selectors: []string{"t"}, LastEventID: "earliest"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe with a cancelled context and a replay: %v; want context.Canceled", err)
	}
	if subs := h.Subscriptions(); len(subs) != 0 {
		t.Errorf("failed Subscribe left %d subscriptions", len(subs))
	}
	if _, err := New(Config{QueueSize: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with a negative QueueSize: %v; want ErrInvalidConfig", err)
	}
}

func TestSubscriptionEvents(t *testing.T) {
	h := newHub(t, Config{SubscriptionEvents: true})
	watcher := subscribe(t, h, SubscribeRequest{
		Selectors: []string{SubscriptionsPath + "{/topic}{/subscriber}"},
		Claims:    &Claims{Subscribe: []string{SubscriptionsPath + "{/topic}{/subscriber}"}},
	})
	anon := subscribe(t, h, SubscribeRequest{Selectors: []string{SubscriptionsPath + "{/topic}{/subscriber}"}})
	watcher.waitEvents(t, 1) // its own connection
	c := subscribe(t, h, SubscribeRequest{
		Selectors:  []string{"https://example.com/books/{id}"},
		Claims:     &Claims{Payload: json.RawMessage(`{"user":"alice"}`)},
		RemoteAddr: "192.0.2.1:1",
	})
	subs := h.Subscriptions()
	var info SubscriptionInfo
	for _, s := range subs {
		if s.Subscriber == c.ID() {
			info = s
		}
	}
	wantID := SubscriptionsPath + "/https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D/" + strings.ReplaceAll(c.ID(), ":", "%3A")
	if info.ID != wantID || info.Topic != "https://example.com/books/{id}" || !info.Active || info.RemoteAddr != "192.0.2.1:1" || string(info.Payload) != `{"user":"alice"}` {
		t.Errorf("Subscriptions entry: %+v; want id %s", info, wantID)
	}
	c.Close()
	// The watcher sees its own connection, anon's, then c's two.
	evs := watcher.waitEvents(t, 4)
	if len(evs) != 4 {
		t.Fatalf("watcher got %d events; want 4", len(evs))
	}
	for i, active := range []bool{true, false} {
		var got map[string]any
		if err := json.Unmarshal([]byte(evs[2+i].Data), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"@context": "https://mercure.rocks/", "id": wantID, "type": "Subscription",
			"topic": "https://example.com/books/{id}", "subscriber": c.ID(), "active": active,
			"payload": map[string]any{"user": "alice"},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("event %d:\n got %v\nwant %v", 2+i, got, want)
		}
	}
	anon.drain()
	if n := len(anon.events(t)); n != 0 {
		t.Errorf("anonymous subscriber got %d private subscription updates; want 0", n)
	}
}

// TestConcurrentChurn publishes, subscribes, drains and closes at once, for
// the race detector.
func TestConcurrentChurn(t *testing.T) {
	store := NewMemoryStore(MemoryStoreConfig{MaxUpdates: 500}) // bounds each replay
	t.Cleanup(func() { store.Close(context.Background()) })
	h := newHub(t, Config{Store: store, QueueSize: 8, SubscriptionEvents: true})
	ctx := context.Background()
	var pubs, wg sync.WaitGroup
	stop := make(chan struct{})
	for p := range 2 {
		pubs.Go(func() {
			for i := range 20_000 {
				select {
				case <-stop:
					return
				default:
				}
				topic := []string{"a", "b", "c/1"}[i%3]
				if _, err := h.Publish(ctx, &Update{ID: fmt.Sprintf("%d-%d", p, i), Topics: []string{topic}, Private: i%5 == 0}); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				s, _, err := h.Subscribe(ctx, SubscribeRequest{
					Selectors:   []string{"a", "c/{x}", "*"}[g%3 : g%3+1],
					Claims:      &Claims{Subscribe: []string{"*"}},
					LastEventID: []string{"", "earliest"}[i%2],
					Notify:      func() {},
				})
				if err != nil {
					t.Errorf("Subscribe: %v", err)
					return
				}
				_, _ = s.Drain(nil)
				_ = h.Subscriptions()
				s.Close()
			}
		})
	}
	wg.Wait()
	close(stop)
	pubs.Wait()
}

// TestExactSelectorsIndexed checks subscribers with exact selectors are
// found by map lookup, not by a scan: none of them is in the pattern list
// that every publish walks (BenchmarkPublishAmongOthers shows the cost).
func TestExactSelectorsIndexed(t *testing.T) {
	h := newHub(t, Config{})
	const n = 50_000
	for i := range n {
		subscribe(t, h, SubscribeRequest{Selectors: []string{fmt.Sprintf("https://example.com/t/%d", i)}})
	}
	pattern := subscribe(t, h, SubscribeRequest{Selectors: []string{"https://example.com/t/{id}"}})
	h.mu.RLock()
	nexact, npat := len(h.exact), len(h.patterns)
	h.mu.RUnlock()
	if nexact != n || npat != 1 {
		t.Errorf("index: %d exact groups, %d pattern groups; want %d and 1", nexact, npat, n)
	}
	publish(t, h, &Update{ID: "1", Topics: []string{"https://example.com/t/7"}})
	if evs := pattern.waitEvents(t, 1); len(evs) != 1 {
		t.Errorf("pattern subscriber got %d events; want 1", len(evs))
	}
}

// TestReplayPaged: a replay of a history many pages long holds about one
// page until the subscriber drains it, and delivers the whole history then
// live updates, once each, in order.
func TestReplayPaged(t *testing.T) {
	const pageBytes, n = 4 << 10, 300
	h := newHub(t, Config{ReplayPageBytes: pageBytes, QueueSize: 64})
	data := strings.Repeat("d", 500)
	for i := range n {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}, Data: data})
	}
	c := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}, LastEventID: EarliestID})
	maxHeld := 0
	var got []string
	deadline := time.After(waitTimeout)
	for len(got) < n+2 {
		if len(got) == 100 { // live updates while the replay is under way
			publish(t, h, &Update{ID: "live-0", Topics: []string{"t"}})
			publish(t, h, &Update{ID: "live-1", Topics: []string{"t"}})
		}
		c.Subscriber.mu.Lock()
		maxHeld = max(maxHeld, len(c.Subscriber.replay))
		c.Subscriber.mu.Unlock()
		before := len(c.buf)
		c.drain()
		if c.err != nil {
			t.Fatalf("Drain: %v", c.err)
		}
		if len(c.buf) == before {
			select {
			case <-c.wake:
			case <-deadline:
				t.Fatalf("timed out with %d events; want %d", len(got), n+2)
			}
		}
		got = ids(c.events(t))
	}
	want := make([]string, 0, n+2)
	for i := range n {
		want = append(want, fmt.Sprint(i))
	}
	want = append(want, "live-0", "live-1")
	if !slices.Equal(got, want) {
		t.Errorf("paged replay then live: got %d events %v…; want %d, in order, once each", len(got), got[:min(len(got), 5)], len(want))
	}
	if limit := pageBytes + 600; maxHeld > limit {
		t.Errorf("the subscriber held %d bytes of replay; want at most a page and one update (%d)", maxHeld, limit)
	}
	if maxHeld == 0 {
		t.Error("never saw a replay page held: the test measured nothing")
	}
}

// TestReplayPagedLiveOverflow: live updates that overflow the queue while a
// long replay waits for its subscriber end it as slow; its client resumes.
func TestReplayPagedLiveOverflow(t *testing.T) {
	m := newRecMetrics()
	h := newHub(t, Config{ReplayPageBytes: 1 << 10, QueueSize: 4, Metrics: m})
	for i := range 50 {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}, Data: strings.Repeat("d", 300)})
	}
	c := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}, LastEventID: EarliestID})
	for i := range 5 {
		publish(t, h, &Update{ID: fmt.Sprint("live-", i), Topics: []string{"t"}})
	}
	evs := c.waitEvents(t, 1000) // returns at the end
	if !errors.Is(c.err, ErrSlowSubscriber) {
		t.Fatalf("Drain after the live queue overflowed during the replay: %v; want ErrSlowSubscriber", c.err)
	}
	if m.disconnects(DisconnectSlow) != 1 {
		t.Errorf("slow disconnects: %d; want 1", m.disconnects(DisconnectSlow))
	}
	last := evs[len(evs)-1].ID
	r := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}, LastEventID: last})
	rest := r.waitEvents(t, 50+5-len(evs))
	if got := append(ids(evs), ids(rest)...); len(got) != 55 || got[54] != "live-4" {
		t.Errorf("first connection then the resumed one: %d events ending %q; want 55 ending live-4", len(got), got[len(got)-1])
	}
}

// laggingStore is a memory store whose deliveries to the hub wait until
// the test releases them, one at a time: a fan-out that lags the store, as
// one cluster node lags another. Its After can be held too.
type laggingStore struct {
	*MemoryStore
	held    chan *Update       // appended, not yet delivered
	release chan chan struct{} // each delivers one held update, then closes the channel
	// afterHeld, when set before the hub calls After, makes After send a
	// channel on it and wait for the channel to be closed.
	afterHeld chan chan struct{}
}

func newLaggingStore(t *testing.T) *laggingStore {
	s := &laggingStore{
		MemoryStore: NewMemoryStore(MemoryStoreConfig{}),
		held:        make(chan *Update, 100),
		release:     make(chan chan struct{}),
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func (s *laggingStore) Subscribe(ctx context.Context, fn func(*Update)) (func(), error) {
	stop, err := s.MemoryStore.Subscribe(ctx, func(u *Update) { s.held <- u })
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	quit := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-quit:
				return
			case done := <-s.release:
				fn(<-s.held)
				close(done)
			}
		}
	})
	return func() { stop(); close(quit); wg.Wait() }, nil
}

func (s *laggingStore) After(ctx context.Context, from Cursor, maxBytes int) (Page, error) {
	if s.afterHeld != nil {
		wait := make(chan struct{})
		s.afterHeld <- wait
		<-wait
	}
	return s.MemoryStore.After(ctx, from, maxBytes)
}

// releaseOne delivers the oldest held update and waits for the hub's
// callback to take it.
func (s *laggingStore) releaseOne(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	select {
	case s.release <- done:
	case <-time.After(waitTimeout):
		t.Fatal("no delivery goroutine to release")
	}
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the held delivery was not made")
	}
}

// TestReplayHandoffLaggingFanOut: a client resumes after X, the newest
// update, whose fan-out reaches this hub while the replay reads the store.
// The handoff drops queued live updates up to the anchor (X), not only up
// to the highest replayed Seq (none here), so X is not sent again.
func TestReplayHandoffLaggingFanOut(t *testing.T) {
	store := newLaggingStore(t)
	h := newHub(t, Config{Store: store})
	ctx := context.Background()
	x := &Update{ID: "x", Topics: []string{"t"}}
	if _, err := h.Publish(ctx, x); err != nil { // stored; its fan-out held
		t.Fatal(err)
	}
	store.afterHeld = make(chan chan struct{})
	type result struct {
		s   *Subscriber
		err error
	}
	subscribed := make(chan result, 1)
	wake := make(chan struct{}, 1)
	go func() {
		s, _, err := h.Subscribe(ctx, SubscribeRequest{Selectors: []string{"t"}, LastEventID: "x",
			Notify: func() {
				select {
				case wake <- struct{}{}:
				default:
				}
			}})
		subscribed <- result{s, err}
	}()
	var wait chan struct{}
	select {
	case wait = <-store.afterHeld: // the replay is reading the store
	case <-time.After(waitTimeout):
		t.Fatal("Subscribe never called After")
	}
	store.releaseOne(t) // x's fan-out arrives meanwhile: queued, unannounced
	waitFannedOut(t, h, x.Seq)
	store.afterHeld = nil
	close(wait)
	var r result
	select {
	case r = <-subscribed:
	case <-time.After(waitTimeout):
		t.Fatal("Subscribe did not return")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.s.Close()
	if buf, _ := r.s.Drain(nil); len(buf) != 0 {
		t.Fatalf("after resuming at x: got %q; want nothing (x again would be a duplicate)", buf)
	}
	y := &Update{ID: "y", Topics: []string{"t"}}
	if _, err := h.Publish(ctx, y); err != nil {
		t.Fatal(err)
	}
	store.releaseOne(t)
	waitFannedOut(t, h, y.Seq)
	buf, _ := r.s.Drain(nil)
	if want := "id:y\ndata:\n\n"; string(buf) != want {
		t.Errorf("live after the handoff: got %q; want only y, %q", buf, want)
	}
}

// TestSubscriptionEventsNotStored: subscription events are delivered live
// and never stored, so a subscriber with many selectors cannot push real
// updates out of a full history; an over-long selector is refused before
// anything is sent.
func TestSubscriptionEventsNotStored(t *testing.T) {
	store := NewMemoryStore(MemoryStoreConfig{MaxUpdates: 100})
	t.Cleanup(func() { store.Close(context.Background()) })
	h := newHub(t, Config{Store: store, SubscriptionEvents: true})
	for i := range 100 {
		publish(t, h, &Update{ID: fmt.Sprint("real-", i), Topics: []string{"t"}})
	}
	watcher := subscribe(t, h, SubscribeRequest{
		Selectors: []string{SubscriptionsPath + "{/topic}{/subscriber}"},
		Claims:    &Claims{Subscribe: []string{"*"}},
	})
	watcher.waitEvents(t, 1) // its own connection
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("https://example.com/many/%d", i)
	}
	c := subscribe(t, h, SubscribeRequest{Selectors: many})
	c.Close()
	if _, _, err := h.Subscribe(context.Background(), SubscribeRequest{Selectors: []string{strings.Repeat("s", 700<<10)}}); !errors.Is(err, ErrSelectorTooLong) {
		t.Fatalf("Subscribe with a 700 KB selector: %v; want ErrSelectorTooLong", err)
	}
	evs := watcher.waitEvents(t, 1+200)
	if len(evs) != 201 {
		t.Fatalf("watcher got %d subscription events; want 201 (its own, 100 connects, 100 disconnects, none for the refused one)", len(evs))
	}
	for _, e := range evs {
		if e.ID != "" {
			t.Fatalf("subscription event with id %q; want none (it cannot be resumed from)", e.ID)
		}
	}
	if n := store.Len(); n != 100 {
		t.Errorf("history holds %d updates; want the 100 real ones", n)
	}
	resumer := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}, LastEventID: "real-0"})
	if got := resumer.waitEvents(t, 99); len(got) != 99 || got[98].ID != "real-99" || !resumer.info.Found {
		t.Errorf("resuming after real-0: %d events, found %v; want real-1…real-99, found", len(got), resumer.info.Found)
	}
	if h.LastEventID() != "real-99" {
		t.Errorf("LastEventID %q; want real-99, not a subscription event", h.LastEventID())
	}
}

// TestPrivateClaimSets: private updates with many topics (indexed) and few
// (scanned) go exactly to the subscribers whose claims match one topic,
// whether they share their claims or not, and the shared claim sets are
// forgotten with their last subscriber.
func TestPrivateClaimSets(t *testing.T) {
	h := newHub(t, Config{})
	many := make([]string, 50)
	for i := range many {
		many[i] = fmt.Sprintf("https://example.com/many/%d", i)
	}
	claims := map[string][]string{
		"exact":          {"https://example.com/many/49"},
		"exact-shared-1": {"https://example.com/few/1", "urn:x"},
		"exact-shared-2": {"urn:x", "https://example.com/few/1", "urn:x"}, // the same set, reordered
		"template":       {"https://example.com/many/{n}"},
		"none":           {"https://example.com/other/{n}", "urn:y"},
		"all":            {"*"},
	}
	clients := map[string]*client{}
	for name, c := range claims {
		clients[name] = subscribe(t, h, SubscribeRequest{Selectors: []string{"*"}, Claims: &Claims{Subscribe: c}})
	}
	h.mu.RLock()
	sets := len(h.claimSets)
	h.mu.RUnlock()
	if sets != 5 {
		t.Errorf("%d claim sets for 6 subscribers, two with the same claims; want 5", sets)
	}
	publish(t, h, &Update{ID: "many", Topics: many, Private: true})
	publish(t, h, &Update{ID: "few", Topics: []string{"https://example.com/few/1", "https://example.com/few/2"}, Private: true})
	want := map[string][]string{
		"exact":          {"many"},
		"exact-shared-1": {"few"},
		"exact-shared-2": {"few"},
		"template":       {"many"},
		"none":           nil,
		"all":            {"many", "few"},
	}
	for name, c := range clients {
		c.drain()
		if got := ids(c.events(t)); !slices.Equal(got, want[name]) {
			t.Errorf("%s: received %v; want %v", name, got, want[name])
		}
		c.Close()
	}
	h.mu.RLock()
	sets = len(h.claimSets)
	h.mu.RUnlock()
	if sets != 0 {
		t.Errorf("%d claim sets left after every subscriber closed; want 0", sets)
	}
}

// TestLiveOnlyResumedAfterNeverPrivate: a live-only subscriber is told it
// resumed after the last public update, never a private one it may not
// receive.
func TestLiveOnlyResumedAfterNeverPrivate(t *testing.T) {
	h := newHub(t, Config{})
	if c := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}}); c.info.ResumedAfter != EarliestID {
		t.Errorf("on an empty hub: ResumedAfter %q; want earliest", c.info.ResumedAfter)
	}
	publish(t, h, &Update{ID: "public", Topics: []string{"t"}})
	publish(t, h, &Update{ID: "secret", Topics: []string{"t"}, Private: true})
	c := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}})
	if c.info.ResumedAfter != "public" {
		t.Errorf("after a private update: ResumedAfter %q; want public, the last update it could receive", c.info.ResumedAfter)
	}
}

// failingPagesStore is a memory store whose After fails after the first
// page: a network store losing its backend mid-replay.
type failingPagesStore struct{ *MemoryStore }

func (s failingPagesStore) After(ctx context.Context, from Cursor, maxBytes int) (Page, error) {
	if from.Seq > 0 {
		return Page{}, fmt.Errorf("test: %w", ErrStoreUnavailable)
	}
	return s.MemoryStore.After(ctx, from, maxBytes)
}

// TestReplayPageFails: a store error on a later page ends the subscriber
// with ErrReplayFailed (its client resumes from what it got) and the hub
// forgets it.
func TestReplayPageFails(t *testing.T) {
	store := failingPagesStore{NewMemoryStore(MemoryStoreConfig{})}
	t.Cleanup(func() { store.Close(context.Background()) })
	h := newHub(t, Config{Store: store, ReplayPageBytes: 1 << 10})
	for i := range 20 {
		publish(t, h, &Update{ID: fmt.Sprint(i), Topics: []string{"t"}, Data: strings.Repeat("d", 300)})
	}
	c := subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}, LastEventID: EarliestID})
	evs := c.waitEvents(t, 20)
	if !errors.Is(c.err, ErrReplayFailed) || !errors.Is(c.err, ErrStoreUnavailable) {
		t.Fatalf("Drain after a failed page: %v; want ErrReplayFailed wrapping the store's error", c.err)
	}
	if len(evs) == 0 || len(evs) >= 20 {
		t.Errorf("%d events before the failure; want the first page only", len(evs))
	}
	if subs := h.Subscriptions(); len(subs) != 0 {
		t.Errorf("%d subscriptions left after the failed replay; want 0", len(subs))
	}
}

// TestSubscribeAfterAcknowledgedPublish: an update whose Publish has
// returned is history to a subscribe made after it, even while the fan-out
// goroutine is still busy with it: the subscribe waits for the fan-out, is
// told it resumed after that update, and does not receive it live.
func TestSubscribeAfterAcknowledgedPublish(t *testing.T) {
	h := newHub(t, Config{})
	release := make(chan struct{})
	var once sync.Once
	holder, _, err := h.Subscribe(context.Background(), SubscribeRequest{
		Selectors: []string{"t"},
		Notify:    func() { once.Do(func() { <-release }) }, // holds the fan-out at its first update
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(holder.Close)
	if _, err := h.Publish(context.Background(), &Update{ID: "acked", Topics: []string{"t"}}); err != nil {
		t.Fatal(err)
	}

	done := make(chan *client, 1)
	go func() { done <- subscribe(t, h, SubscribeRequest{Selectors: []string{"t"}}) }()
	select {
	case c := <-done:
		t.Fatalf("Subscribe returned (ResumedAfter %q) while the acknowledged update was not yet fanned out", c.info.ResumedAfter)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	c := <-done
	if c.info.ResumedAfter != "acked" {
		t.Errorf("ResumedAfter %q; want acked, the update acknowledged before the subscribe", c.info.ResumedAfter)
	}
	publish(t, h, &Update{ID: "next", Topics: []string{"t"}})
	if got := ids(c.waitEvents(t, 1)); !slices.Equal(got, []string{"next"}) {
		t.Errorf("live events %q; want [next] only", got)
	}

	// A subscribe whose context ends while it waits returns at once.
	release2 := make(chan struct{})
	var once2 sync.Once
	holder2, _, err := h.Subscribe(context.Background(), SubscribeRequest{
		Selectors: []string{"u"},
		Notify:    func() { once2.Do(func() { <-release2 }) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(holder2.Close)
	defer close(release2)
	if _, err := h.Publish(context.Background(), &Update{ID: "held", Topics: []string{"u"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	start := time.Now()
	s, _, err := h.Subscribe(ctx, SubscribeRequest{Selectors: []string{"u"}})
	if err == nil {
		s.Close()
	}
	if waited := time.Since(start); waited >= maxFanWait {
		t.Errorf("Subscribe with a cancelled context waited %v, its full bound; want it to return at the cancel", waited)
	}
	if h.fanned.Load() >= h.acked.Load() {
		t.Errorf("the fan-out finished while it was held; the wait above was not tested")
	}
}
