package sse_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ssekit/sse"
)

// The tests in this file check the client's timing (reconnection waits,
// backoff, read timeouts) in a synctest bubble, where time is fake and
// exact: a real net/http server and transport talk over in-memory pipes,
// since a bubble cannot wait on real sockets.

// pipeNet is an in-memory network: every dial is a net.Pipe whose other
// end the listener accepts.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeNet() *pipeNet {
	return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (n *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-n.conns:
		return c, nil
	case <-n.done:
		return nil, net.ErrClosed
	}
}

func (n *pipeNet) Close() error {
	n.once.Do(func() { close(n.done) })
	return nil
}

func (n *pipeNet) Addr() net.Addr { return pipeAddr{} }

func (n *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case n.conns <- server:
		return client, nil
	case <-n.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// servePipe serves h over an in-memory network inside the current bubble
// and returns an HTTP client for it; all is torn down at the end of the
// test.
func servePipe(t *testing.T, h http.Handler) *http.Client {
	n := newPipeNet()
	srv := &http.Server{Handler: h}
	go srv.Serve(n)
	tr := &http.Transport{DialContext: n.dial}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return &http.Client{Transport: tr}
}

// timedScript serves its i-th request with steps[i] (204 after the last)
// and records when each request arrived.
type timedScript struct {
	steps []step

	mu    sync.Mutex
	times []time.Time // guarded by mu
}

func (s *timedScript) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.times)
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	if n < len(s.steps) {
		s.steps[n](w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *timedScript) arrivals() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times...)
}

// gaps returns the time between consecutive request arrivals.
func gaps(times []time.Time) []time.Duration {
	var d []time.Duration
	for i := 1; i < len(times); i++ {
		d = append(d, times[i].Sub(times[i-1]))
	}
	return d
}

func connectPipe(t *testing.T, c *sse.Client) *sse.EventSource {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://pipe/", nil)
	if err != nil {
		t.Fatal(err)
	}
	es := c.Connect(req)
	t.Cleanup(func() { es.Close() })
	return es
}

func drain(t *testing.T, es *sse.EventSource) error {
	t.Helper()
	for range 1000 {
		if _, err := es.Next(); err != nil {
			return err
		}
	}
	t.Fatal("stream did not end")
	return nil
}

func TestClientTimingDefaultRetryAndRetryField(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &timedScript{steps: []step{
			send("data: a\n\n"),               // then the default 3s
			send("retry: 10000\ndata: b\n\n"), // then 10s
			send("retry: 500\n"),              // unterminated: still takes effect
			send("data: c\n\n"),
		}}
		es := connectPipe(t, &sse.Client{HTTPClient: servePipe(t, s)})
		var se *sse.StatusError
		if err := drain(t, es); !errors.As(err, &se) || se.StatusCode != http.StatusNoContent {
			t.Fatalf("end: got %v; want a 204 StatusError", err)
		}
		got := gaps(s.arrivals())
		// After the third connection (no event: unhealthy) the wait doubles
		// with jitter: within [500ms, 1s].
		if len(got) != 4 || got[0] != 3*time.Second || got[1] != 10*time.Second ||
			got[2] < 500*time.Millisecond || got[2] > time.Second || got[3] != 500*time.Millisecond {
			t.Errorf("gaps between requests: got %v; want [3s 10s 500ms..1s 500ms]", got)
		}
	})
}

func TestClientTimingBackoffCapAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		empty := send("")
		var steps []step
		for range 8 {
			steps = append(steps, empty)
		}
		steps = append(steps, send("data: a\n\n"), empty)
		s := &timedScript{steps: steps}
		c := &sse.Client{HTTPClient: servePipe(t, s), Retry: time.Second, MaxRetry: 10 * time.Second}
		drain(t, connectPipe(t, c))
		got := gaps(s.arrivals())
		s1 := time.Second
		bounds := [][2]time.Duration{
			{s1, s1}, {s1, 2 * s1}, {2 * s1, 4 * s1}, {4 * s1, 8 * s1},
			{5 * s1, 10 * s1}, {5 * s1, 10 * s1}, {5 * s1, 10 * s1}, {5 * s1, 10 * s1},
			{s1, s1}, // the event made the connection healthy
			{s1, 2 * s1},
		}
		if len(got) != len(bounds) {
			t.Fatalf("gaps: got %v; want %d", got, len(bounds))
		}
		for i, b := range bounds {
			if got[i] < b[0] || got[i] > b[1] {
				t.Errorf("gap %d: got %v; want within [%v, %v] (all: %v)", i, got[i], b[0], b[1], got)
			}
		}
	})
}

func TestClientTimingHealthyAfterAMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Up for a while with only comments, then the end: a long-lived
		// connection resets the backoff; a short one does not.
		idle := func(d time.Duration) step {
			return func(w http.ResponseWriter, r *http.Request) {
				streamHeaders(w)
				w.WriteHeader(http.StatusOK)
				http.NewResponseController(w).Flush()
				time.Sleep(d)
				io.WriteString(w, ":bye\n")
			}
		}
		s := &timedScript{steps: []step{
			send(""), send(""), send(""), // backoff grows
			idle(sse.HealthyConnection), // healthy: the next wait is 1s
			idle(sse.HealthyConnection - time.Second),
		}}
		c := &sse.Client{HTTPClient: servePipe(t, s), Retry: time.Second, MaxRetry: time.Hour}
		drain(t, connectPipe(t, c))
		got := gaps(s.arrivals())
		if len(got) != 5 {
			t.Fatalf("gaps: got %v; want 5", got)
		}
		if wait := got[3] - sse.HealthyConnection; wait != time.Second {
			t.Errorf("wait after a healthy connection: got %v; want 1s", wait)
		}
		if wait := got[4] - (sse.HealthyConnection - time.Second); wait < time.Second || wait > 2*time.Second {
			t.Errorf("wait after a short connection: got %v; want within [1s, 2s]", wait)
		}
	})
}

func TestClientTimingReadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		droppedAt := make(chan time.Time, 1)
		s := &timedScript{steps: []step{
			func(w http.ResponseWriter, r *http.Request) {
				streamHeaders(w)
				rc := http.NewResponseController(w)
				io.WriteString(w, "data: a\n\n")
				rc.Flush()
				for range 10 { // heartbeats inside the timeout keep it up
					time.Sleep(4 * time.Second)
					io.WriteString(w, ":\n")
					rc.Flush()
				}
				<-r.Context().Done() // then silence
				droppedAt <- time.Now()
			},
			send("data: b\n\n"),
		}}
		var reasons []error
		c := &sse.Client{
			HTTPClient:  servePipe(t, s),
			Retry:       time.Second,
			ReadTimeout: 5 * time.Second,
			OnRetry:     func(err error, _ time.Duration) { reasons = append(reasons, err) },
		}
		drain(t, connectPipe(t, c))
		arrivals := s.arrivals()
		dropped := <-droppedAt
		if len(arrivals) != 3 {
			t.Fatalf("requests: got %d; want 3", len(arrivals))
		}
		if got := dropped.Sub(arrivals[0]); got != 45*time.Second {
			t.Errorf("connection dropped after %v; want 45s (40s of heartbeats + the 5s timeout)", got)
		}
		if got := arrivals[1].Sub(dropped); got != time.Second {
			t.Errorf("reconnected %v after the drop; want the 1s reconnection time", got)
		}
		if len(reasons) == 0 || reasons[0] != sse.ErrReadTimeout {
			t.Errorf("OnRetry reasons: got %v; want ErrReadTimeout first", reasons)
		}
	})
}

func TestClientTimingReadTimeoutWaitingForHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &timedScript{steps: []step{
			func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		}}
		c := &sse.Client{HTTPClient: servePipe(t, s), Retry: time.Second, ReadTimeout: 5 * time.Second}
		drain(t, connectPipe(t, c))
		if got := gaps(s.arrivals()); len(got) != 1 || got[0] != 6*time.Second {
			t.Errorf("gaps: got %v; want [6s] (5s timeout + 1s wait)", got)
		}
	})
}

func TestClientTimingNegativeRetryMeansNoWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &timedScript{steps: []step{send("data: a\n\n"), send(""), send("retry: 2000\ndata: b\n\n")}}
		es := connectPipe(t, &sse.Client{HTTPClient: servePipe(t, s), Retry: -1})
		if got := es.Retry(); got != 0 {
			t.Errorf("Retry: got %v; want 0", got)
		}
		drain(t, es)
		if got := gaps(s.arrivals()); len(got) != 3 || got[0] != 0 || got[1] != 0 || got[2] != 2*time.Second {
			t.Errorf("gaps: got %v; want [0s 0s 2s]", got)
		}
	})
}
