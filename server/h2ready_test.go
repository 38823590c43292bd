package server_test

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/h2test"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/server"
)

// TestLeanHTTP2IdleConnectionsHoldNoGoroutine: connections with one idle
// subscriber stream each, over h2c and TLS (internal/tlsrecord), are read
// when their socket is readable (the departure watcher's epoll set), with
// no goroutine each on the hub's side; a reset stream and a closed
// connection still end their subscriber at once, and an idle connection
// still answers PING and new requests.
func TestLeanHTTP2IdleConnectionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("HTTP/2 reads are driven by epoll on Linux only; elsewhere a goroutine per connection reads")
	}
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "h2c", true: "tls"}[useTLS]
		t.Run(name, func(t *testing.T) {
			metrics := &reasons{got: map[string]int{}}
			lh := newLeanHub(t, useTLS, func(h *hub.Config, s *server.Config) {
				h.Metrics = metrics
				s.Heartbeat = -1
			})
			const n = 40
			before := runtime.NumGoroutine()
			conns := make([]*h2test.Conn, n)
			for i := range conns {
				conns[i] = lh.raw(t) // its client side has a reader goroutine of its own
				conns[i].Get(1, hub.Path+"?topic=idle")
				conns[i].WaitFor("the stream's head", h2test.IsHeaders(1))
			}
			poll.Until(t, "no goroutine per idle connection on the hub's side", 5*time.Second, func() bool {
				return runtime.NumGoroutine()-before < n+10
			})
			if got := len(lh.Hub.Hub.Subscriptions()); got != n {
				t.Fatalf("%d subscriptions; want %d", got, n)
			}

			// An idle connection is read again when bytes come.
			a := conns[0]
			a.Fr.WritePing(false, [8]byte{1, 2, 3})
			a.WaitFor("the PING's answer", func(f http2.Frame) bool {
				p, ok := f.(*http2.PingFrame)
				return ok && p.IsAck() && p.Data == [8]byte{1, 2, 3}
			})
			a.Get(3, "/healthz")
			a.WaitFor("an answer on the idle connection", h2test.IsHeaders(3))

			// Departures: a reset stream, a closed connection.
			conns[1].Fr.WriteRSTStream(1, http2.ErrCodeCancel)
			conns[2].NC.Close()
			poll.Until(t, "the reset and the departed subscribers gone", 2*time.Second, func() bool {
				return len(lh.Hub.Hub.Subscriptions()) == n-2
			})
			if got := metrics.count(hub.DisconnectGone); got != 2 {
				t.Errorf("%d disconnects counted as gone; want 2", got)
			}
			for _, c := range conns[3:] {
				c.NC.Close()
			}
			poll.Until(t, "every departed connection's subscriber gone", 5*time.Second, func() bool {
				return len(lh.Hub.Hub.Subscriptions()) == 1
			})
		})
	}
}
