package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/ssetest"
)

// fault is a misbehaviour the stub hub can inject for one subscriber.
type fault int

const (
	faultNone    fault = iota
	faultDrop          // update 5 never reaches the victim
	faultDup           // update 3 reaches the victim twice
	faultReorder       // the victim gets update 4 before update 3
)

// stubHub is the smallest Mercure-speaking hub the generator needs: exact
// topic match, an in-memory fan-out, an optional publisher token, and one
// injected fault for the first subscriber that matches an update (the
// victim).
type stubHub struct {
	fault    fault
	pubToken string // required as "Bearer …" on publish when not empty
	subToken string // required as "Bearer …" on subscribe when not empty

	mu   sync.Mutex // guards subs, held, nextID
	subs []*stubSub
	held *sse.Event // the victim's update 3 under faultReorder

	nextID int
}

type stubSub struct {
	topics []string
	ch     chan sse.Event
}

func (h *stubHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/.well-known/mercure" {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		h.subscribe(w, r)
	case http.MethodPost:
		h.publish(w, r)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *stubHub) subscribe(w http.ResponseWriter, r *http.Request) {
	if h.subToken != "" && r.Header.Get("Authorization") != "Bearer "+h.subToken {
		http.Error(w, "bad subscriber token", http.StatusUnauthorized)
		return
	}
	sub := &stubSub{topics: r.URL.Query()["topic"], ch: make(chan sse.Event, 1024)}
	if len(sub.topics) == 0 {
		http.Error(w, "no topic", http.StatusBadRequest)
		return
	}
	// Registered before the headers go out: headers mean "subscribed".
	h.mu.Lock()
	h.subs = append(h.subs, sub)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.subs = slices.DeleteFunc(h.subs, func(s *stubSub) bool { return s == sub })
		h.mu.Unlock()
	}()
	// Frequent heartbeats exercise the idle subscribers' heartbeat skipping.
	st, err := sse.NewStream(w, r, sse.StreamConfig{Heartbeat: 5 * time.Millisecond})
	if err != nil {
		return
	}
	defer st.Close()
	for {
		select {
		case ev := <-sub.ch:
			if st.Send(ev) != nil {
				return
			}
		case <-st.Context().Done():
			return
		}
	}
}

func (h *stubHub) publish(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+h.pubToken && h.pubToken != "" {
		http.Error(w, "bad publisher token", http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	topics := r.PostForm["topic"]
	if len(topics) == 0 {
		http.Error(w, "no topic", http.StatusBadRequest)
		return
	}
	data := r.PostForm.Get("data")
	seq, _, _ := strings.Cut(data, " ")

	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	ev := sse.Event{ID: "urn:stub:" + strconv.Itoa(h.nextID), Data: data}
	victim := true
	for _, s := range h.subs {
		if !slices.ContainsFunc(topics, func(t string) bool { return slices.Contains(s.topics, t) }) {
			continue
		}
		send := []sse.Event{ev}
		if victim {
			victim = false
			switch {
			case h.fault == faultDrop && seq == "5":
				send = nil
			case h.fault == faultDup && seq == "3":
				send = append(send, ev)
			case h.fault == faultReorder && seq == "3":
				h.held, send = &ev, nil
			case h.fault == faultReorder && seq == "4" && h.held != nil:
				send = append(send, *h.held)
			}
		}
		for _, e := range send {
			select {
			case s.ch <- e:
			default: // a test subscriber this slow is a bug; the counts will say so
			}
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(ev.ID))
}

// startStub serves a stub hub over plain HTTP/1.1, or TLS with HTTP/2
// enabled, and returns a Config aimed at it.
func startStub(t *testing.T, h *stubHub, tls bool) Config {
	t.Helper()
	proto := ssetest.HTTP1
	if tls {
		proto = ssetest.HTTP2
	}
	srv := ssetest.NewServer(t, proto, h)
	cfg := Config{
		Hub:            srv.URL + "/.well-known/mercure",
		PublisherToken: h.pubToken,
		Drain:          time.Second,
	}
	if tls {
		cfg.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	}
	return cfg
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func TestRunDeliversEverything(t *testing.T) {
	for _, mode := range []struct {
		name  string
		tls   bool
		h2Sub int // subscribers over HTTP/2, this many per connection
	}{{"http1", false, 0}, {"tls-http2", true, 0}, {"http2-subscribers-8-per-conn", true, 8}, {"http2-subscribers-1-per-conn", true, 1}} {
		t.Run(mode.name, func(t *testing.T) {
			cfg := startStub(t, &stubHub{pubToken: "pub"}, mode.tls)
			cfg.HTTP2 = mode.h2Sub > 0
			cfg.StreamsPerConn = mode.h2Sub
			cfg.Subscribers = 50
			cfg.HotShare = 0.2 // 10 hot subscribers, 5 on each hot topic
			cfg.HotTopics = 2
			cfg.Updates = 20
			cfg.Publishers = 2
			cfg.Payload = 64
			rep := run(t, cfg)

			checks := []struct {
				name      string
				got, want int64
			}{
				{"connected", int64(rep.Connected), 50},
				{"connect errors", int64(rep.ConnectErrors), 0},
				{"hot subscribers", int64(rep.HotSubscribers), 10},
				{"published", int64(rep.Published), 20},
				{"publish errors", int64(rep.PublishErrors), 0},
				{"expected", rep.Expected, 20 * 5},
				{"delivered", rep.Delivered, 20 * 5},
				{"lost", rep.Lost, 0},
				{"duplicated", rep.Duplicated, 0},
				{"out of order", rep.OutOfOrder, 0},
				{"unexpected", rep.Unexpected, 0},
				{"malformed", rep.Malformed, 0},
				{"disconnected", int64(rep.Disconnected), 0},
				{"latency count", int64(rep.Latency.Count), 20 * 5},
				{"connect count", int64(rep.ConnectLatency.Count), 50},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: got %d; want %d", c.name, c.got, c.want)
				}
			}
			if rep.Latency.Max <= 0 || rep.Latency.P50 > rep.Latency.Max {
				t.Errorf("latency %+v: want 0 < p50 <= max", rep.Latency)
			}
		})
	}
}

func TestRunAllActive(t *testing.T) {
	cfg := startStub(t, &stubHub{}, false)
	cfg.Subscribers = 20
	cfg.AllActive = true
	cfg.Updates = 10
	cfg.Rate = 1000
	rep := run(t, cfg)
	if rep.HotSubscribers != 20 || rep.Expected != 200 || rep.Delivered != 200 || rep.Lost != 0 {
		t.Errorf("hot %d, expected %d, delivered %d, lost %d; want 20, 200, 200, 0",
			rep.HotSubscribers, rep.Expected, rep.Delivered, rep.Lost)
	}
}

func TestRunReportsFaults(t *testing.T) {
	tests := []struct {
		name                    string
		fault                   fault
		delivered, lost, dup, o int64
	}{
		{"drop", faultDrop, 99, 1, 0, 0},
		{"duplicate", faultDup, 100, 0, 1, 0},
		{"reorder", faultReorder, 100, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := startStub(t, &stubHub{fault: tt.fault}, false)
			cfg.Subscribers = 50
			cfg.HotShare = 0.1 // 5 hot subscribers
			cfg.Updates = 20
			cfg.Payload = 100
			rep := run(t, cfg)
			if rep.Expected != 100 {
				t.Fatalf("expected: got %d; want 100", rep.Expected)
			}
			if rep.Delivered != tt.delivered || rep.Lost != tt.lost || rep.Duplicated != tt.dup || rep.OutOfOrder != tt.o {
				t.Errorf("delivered %d, lost %d, duplicated %d, out of order %d; want %d, %d, %d, %d",
					rep.Delivered, rep.Lost, rep.Duplicated, rep.OutOfOrder, tt.delivered, tt.lost, tt.dup, tt.o)
			}
		})
	}
}

func TestRunPublishOnly(t *testing.T) {
	cfg := startStub(t, &stubHub{}, false)
	cfg.Updates = 50
	cfg.Publishers = 4
	rep := run(t, cfg)
	if rep.Published != 50 || rep.Expected != 0 || rep.PublishRate <= 0 || rep.PublishLatency.Count != 50 {
		t.Errorf("published %d, expected %d, rate %g, publish latencies %d; want 50, 0, > 0, 50",
			rep.Published, rep.Expected, rep.PublishRate, rep.PublishLatency.Count)
	}
}

func TestRunTokens(t *testing.T) {
	h := &stubHub{pubToken: "pub", subToken: "sub"}
	cfg := startStub(t, h, false)
	cfg.Subscribers = 5
	cfg.Updates = 3

	t.Run("no publisher token", func(t *testing.T) {
		c := cfg
		c.PublisherToken = ""
		c.SubscriberToken = "sub"
		rep, err := Run(t.Context(), c)
		if !errors.Is(err, ErrPublishRefused) {
			t.Fatalf("Run: got error %v; want ErrPublishRefused", err)
		}
		if rep == nil || !strings.Contains(rep.FirstPublishError, "401") {
			t.Errorf("report %+v: want a first publish error with 401", rep)
		}
	})
	t.Run("no subscriber token", func(t *testing.T) {
		_, err := Run(t.Context(), cfg)
		if !errors.Is(err, ErrNoSubscriber) || !strings.Contains(err.Error(), "401") {
			t.Fatalf("Run: got error %v; want ErrNoSubscriber with 401", err)
		}
	})
	t.Run("both", func(t *testing.T) {
		c := cfg
		c.SubscriberToken = "sub"
		c.HotShare = 1
		rep := run(t, c)
		if rep.Delivered != 15 || rep.Lost != 0 {
			t.Errorf("delivered %d, lost %d; want 15, 0", rep.Delivered, rep.Lost)
		}
	})
}

func TestRunServerStats(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("server stats read Linux's /proc")
	}
	cfg := startStub(t, &stubHub{}, false)
	cfg.Subscribers = 10
	cfg.HotShare = 1
	cfg.Updates = 5
	cfg.Settle = -1
	cfg.PID = os.Getpid() // the stub runs in this process
	rep := run(t, cfg)
	st := rep.Server
	if st == nil {
		t.Fatalf("no server stats; error %q", rep.ServerError)
	}
	if st.PID != cfg.PID || st.RSSBaseline <= 0 || st.RSSEnd <= 0 || st.RSSPeak < st.RSSEnd || st.CPUPublish < 0 {
		t.Errorf("server stats %+v: want positive RSS readings and peak >= end", st)
	}
}

func TestRunProgress(t *testing.T) {
	cfg := startStub(t, &stubHub{}, false)
	cfg.Subscribers = 3
	cfg.Updates = 2
	var buf e2etest.LockedBuffer
	cfg.Progress = &buf
	run(t, cfg)
	out := buf.String()
	if !strings.Contains(out, "connected 3/3") || !strings.Contains(out, "published 2/2") {
		t.Errorf("progress %q: want a final line with connected 3/3 and published 2/2", out)
	}
}

func TestRemoteTarget(t *testing.T) {
	tests := []struct {
		hub         string
		allowRemote bool
		refused     bool
	}{
		{"http://192.0.2.1/.well-known/mercure", false, true},
		{"https://10.1.2.3:8443/.well-known/mercure", false, true},
		{"http://[2001:db8::1]:8080/.well-known/mercure", false, true},
		{"http://192.0.2.1/.well-known/mercure", true, false},
		{"http://127.0.0.1:8080/.well-known/mercure", false, false},
		{"http://127.9.9.9:8080/.well-known/mercure", false, false},
		{"http://[::1]:8080/.well-known/mercure", false, false},
		{"http://localhost:8080/.well-known/mercure", false, false},
		{"http://hub.localhost:8080/.well-known/mercure", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.hub+"/allow="+strconv.FormatBool(tt.allowRemote), func(t *testing.T) {
			_, err := Config{Hub: tt.hub, AllowRemote: tt.allowRemote}.prepare(t.Context())
			if got := errors.Is(err, ErrRemoteTarget); got != tt.refused {
				t.Fatalf("prepare: got error %v; want refused %v", err, tt.refused)
			}
			if tt.refused && !strings.Contains(err.Error(), "--allow-remote") {
				t.Errorf("error %q does not say how to allow it", err)
			}
		})
	}
	// Run refuses before any connection.
	if _, err := Run(t.Context(), Config{Hub: "http://192.0.2.1:1/.well-known/mercure", Subscribers: 1}); !errors.Is(err, ErrRemoteTarget) {
		t.Errorf("Run: got error %v; want ErrRemoteTarget", err)
	}
}

func TestConfigInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative subscribers", Config{Subscribers: -1}},
		{"too many updates", Config{Updates: MaxUpdates + 1}},
		{"hot share above 1", Config{HotShare: 1.5}},
		{"negative rate", Config{Rate: -1}},
		{"huge payload", Config{Payload: MaxPayload + 1}},
		{"too many publishers", Config{Publishers: MaxPublishers + 1}},
		{"more hot topics than hot subscribers", Config{Subscribers: 10, HotShare: 0.1, HotTopics: 2}},
		{"ftp hub", Config{Hub: "ftp://127.0.0.1/"}},
		{"no host", Config{Hub: "http:///.well-known/mercure"}},
		{"negative pid", Config{PID: -1}},
		{"negative streams per connection", Config{HTTP2: true, StreamsPerConn: -1}},
		{"too many streams per connection", Config{HTTP2: true, StreamsPerConn: MaxStreamsPerConn + 1}},
		{"too much tracking", Config{Subscribers: MaxSubscribers, AllActive: true, Updates: MaxUpdates}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.cfg.prepare(t.Context()); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("prepare: got error %v; want ErrInvalidConfig", err)
			}
		})
	}
}

func TestDataRoundTrip(t *testing.T) {
	for _, size := range []int{0, 10, 100, 4096} {
		data := string(appendData(nil, 42, 1700000000123456789, size))
		if size > 30 && len(data) != size {
			t.Errorf("size %d: got %d bytes", size, len(data))
		}
		seq, ts, ok := parseData(data)
		if !ok || seq != 42 || ts != 1700000000123456789 {
			t.Errorf("size %d: parseData(%q) = %d, %d, %v; want 42, 1700000000123456789, true", size, data, seq, ts, ok)
		}
	}
	for _, bad := range []string{"", "hello", "1 2", "x 2 ", "-1 2 ", "1 y "} {
		if _, _, ok := parseData(bad); ok {
			t.Errorf("parseData(%q): ok; want not ok", bad)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	s := summarize(&h)
	near := func(got, want time.Duration) bool {
		return got >= want*96/100 && got <= want*104/100
	}
	if s.Count != 1000 || !near(s.P50, 500*time.Microsecond) || !near(s.P99, 990*time.Microsecond) || s.Max != time.Millisecond {
		t.Errorf("summary %+v: want count 1000, p50 ≈ 500µs, p99 ≈ 990µs, max 1ms", s)
	}
	for _, v := range []uint64{0, 1, 31, 32, 33, 1000, 1 << 40, 1<<64 - 1} {
		lo, hi := histBounds(histIndex(v))
		if v < lo || v > hi {
			t.Errorf("value %d in bucket [%d, %d]", v, lo, hi)
		}
	}
	if got := summarize(new(hist)); got != (summary{}) {
		t.Errorf("empty summary: got %+v; want zero", got)
	}
}

func TestReportFormats(t *testing.T) {
	rep := &Report{
		Hub: DefaultHub, Subscribers: 10, HotSubscribers: 1, HotTopics: 1, Updates: 5, Payload: 100, Publishers: 1,
		Connected: 10, Published: 5, Expected: 5, Delivered: 4, Lost: 1,
		Latency: Latency{Count: 4, P50: 1.5, P99: 2, Max: 2.5},
		Server:  &ServerStats{PID: 7, RSSBaseline: 10 << 20, RSSConnected: 11 << 20, RSSPerSubscriber: 2048},
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lost", "p50 1.50ms", "2.00 KiB per subscriber", "4 of 5 expected"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(js.String(), "\n"); n != 1 {
		t.Errorf("JSON report has %d lines; want 1", n)
	}
	var m map[string]any
	if err := json.Unmarshal(js.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"delivered", "lost", "duplicated", "out_of_order", "latency_ms", "connect_ms", "server", "publishes_per_second"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON report lacks %q: %s", key, js.String())
		}
	}
}

// chunks is a reader that returns one chunk per Read.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	if n == len((*c)[0]) {
		*c = (*c)[1:]
	} else {
		(*c)[0] = (*c)[0][n:]
	}
	return n, nil
}

func TestSkipHeartbeats(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
	}{
		{"heartbeats then an event", []string{":\n", ": ping\r\n", "\n", "data: 1\n\n"}},
		{"event at once", []string{"data: 1\n\n"}},
		{"comment without line end", []string{":", "\ndata: 1\n\n"}},
		{"comment then event in one read", []string{":\ndata: 1\n\n"}},
		{"CR split from its LF", []string{":\r", "\ndata: 1\n\n"}},
		{"BOM at the start", []string{"\xEF\xBB\xBFdata: 1\n\n"}},
		{"BOM after a heartbeat is not stripped", []string{":\n", "\xEF\xBB\xBFdata: 1\n\ndata: 2\n\n"}},
		{"only heartbeats", []string{":\n", ":\n"}},
		{"long event", []string{":\n", "data: " + strings.Repeat("y", 1000) + "\n\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := decodeAll(t, sse.NewDecoder(strings.NewReader(strings.Join(tt.chunks, ""))))
			c := chunks(slices.Clone(tt.chunks))
			first, skipped, err := skipHeartbeats(&c, make([]byte, 16))
			var got []sse.Event
			if err == nil {
				if skipped {
					first = append([]byte(":\n"), first...)
				}
				got = decodeAll(t, sse.NewDecoder(io.MultiReader(bytes.NewReader(first), &c)))
			} else if err != io.EOF {
				t.Fatalf("skipHeartbeats: %v", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("got events %+v; want %+v", got, want)
			}
		})
	}
}

func decodeAll(t *testing.T, d *sse.Decoder) []sse.Event {
	t.Helper()
	var evs []sse.Event
	for ev, err := range d.Events() {
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		evs = append(evs, ev)
	}
	return evs
}
