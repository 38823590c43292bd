package server_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// rawSubscribe opens a TCP connection to th, sends a subscribe request
// for query and reads the response head: a client whose socket the test
// controls. It fails the test unless the answer is 200.
func (th *testHub) rawSubscribe(query url.Values) (net.Conn, *bufio.Reader) {
	th.t.Helper()
	u, _ := url.Parse(th.url)
	nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		th.t.Fatal(err)
	}
	th.t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte("GET " + u.Path + "?" + query.Encode() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n")); err != nil {
		th.t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		th.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		th.t.Fatalf("subscribe: %s", resp.Status)
	}
	nc.SetDeadline(time.Time{})
	return nc, br
}

// subscribeStatus is the status a new subscribe for query gets.
func (th *testHub) subscribeStatus(query url.Values) int {
	th.t.Helper()
	req, _ := http.NewRequest("GET", th.url+"?"+query.Encode(), nil)
	resp, err := th.head(req)
	if err != nil {
		th.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDepartureFreesTheSlotAtOnce: a client that closes its taken-over
// connection is ended as soon as it hangs up, not at the next heartbeat
// (which here never comes, or comes in an hour): its per-client slot, its
// entry in the subscriptions list and the disconnect count follow, so a
// page reload under a per-client limit of 1 is served.
func TestDepartureFreesTheSlotAtOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("departures are watched with epoll, on Linux only; elsewhere a write notices them")
	}
	for _, heartbeat := range []time.Duration{-1, time.Hour} {
		t.Run("heartbeat "+heartbeat.String(), func(t *testing.T) {
			metrics := &reasons{got: map[string]int{}}
			th := newTestHub(t, ssetest.HTTP1, func(h *hub.Config, s *server.Config) {
				h.Metrics = metrics
				s.Heartbeat = heartbeat
				s.MaxSubscribersPerClient = 1
			})
			for reload := range 3 {
				nc, _ := th.rawSubscribe(topics("page"))
				if got := len(th.hub.Subscriptions()); got != 1 {
					t.Fatalf("reload %d: %d subscriptions listed; want 1", reload, got)
				}
				nc.Close()
				poll.Until(t, "the departed subscriber leaving the subscriptions list", 2*time.Second, func() bool {
					return len(th.hub.Subscriptions()) == 0
				})
				if got := th.subscribeStatus(url.Values{"topic": {"page"}, "probe": {"1"}}); got != http.StatusOK {
					// the probe itself is closed by the client at once: wait for it too
					t.Fatalf("reload %d: subscribe after the client left = %d; want 200 (slot freed)", reload, got)
				}
				poll.Until(t, "the probe's slot freed", 2*time.Second, func() bool {
					return len(th.hub.Subscriptions()) == 0
				})
			}
			if got := metrics.count(hub.DisconnectGone); got != 6 {
				t.Errorf("%d disconnects counted as gone; want 6", got)
			}
		})
	}
}

// TestBytesAfterTheRequestDoNotSpinTheWatcher: a client that keeps
// sending after its request (a hostile one; well-behaved clients send
// nothing) wakes nobody, is still served, and its hang-up is noticed.
func TestBytesAfterTheRequestDoNotSpinTheWatcher(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("departures are watched with epoll, on Linux only")
	}
	th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) { s.Heartbeat = -1 })
	nc, br := th.rawSubscribe(topics("chatty"))
	before := server.DepartureWakeups(th.server)
	junk := []byte(strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 100))
	for range 20 {
		if _, err := nc.Write(junk); err != nil {
			t.Fatalf("writing after the request: %v", err)
		}
	}
	th.mustPublish("still served", "chatty")
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if line == "data:still served\n" {
			break
		}
	}
	if got := server.DepartureWakeups(th.server) - before; got != 0 {
		t.Errorf("the departure watcher woke %d times for bytes a client sent; want 0", got)
	}
	nc.Close()
	poll.Until(t, "the chatty client's departure noticed", 2*time.Second, func() bool {
		return len(th.hub.Subscriptions()) == 0
	})
}

// departed signals each disconnect the hub counts.
type departed struct {
	hub.NopMetrics
	ch chan struct{}
}

func (d *departed) SubscriberDisconnected(string) { d.ch <- struct{}{} }

// BenchmarkDepartureDelay measures how long after a client closes its
// taken-over connection the hub has ended its subscriber (the disconnect
// is counted, the slot and the subscriptions entry freed), with
// heartbeats off so only the departure watcher can notice. ns/op is one
// subscribe, close and detection; delay-µs is the detection alone.
func BenchmarkDepartureDelay(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("departures are watched with epoll, on Linux only")
	}
	d := &departed{ch: make(chan struct{}, 1)}
	th := newTestHub(b, ssetest.HTTP1, func(h *hub.Config, s *server.Config) {
		h.Metrics = d
		s.Heartbeat = -1
	})
	var total time.Duration
	for b.Loop() {
		nc, _ := th.rawSubscribe(topics("bench"))
		start := time.Now()
		nc.Close()
		select {
		case <-d.ch:
		case <-time.After(10 * time.Second):
			b.Fatal("departure not noticed within 10s")
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "delay-µs")
}

// TestDepartureOverTLS: a taken-over HTTP/1.1 connection over TLS is
// watched through the TCP socket beneath it, so its client's departure is
// noticed at once too.
func TestDepartureOverTLS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("departures are watched with epoll, on Linux only")
	}
	th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) { s.Heartbeat = -1 })
	tlsSrv := httptest.NewUnstartedServer(th.server) // HTTP/1.1 over TLS
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	for i := range 3 {
		nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tlsSrv.Listener.Addr().String(),
			&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(nc, "GET /.well-known/mercure?topic=tls HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("subscribe over TLS: %v %v", resp, err)
		}
		poll.Until(t, "the TLS subscriber listed", 2*time.Second, func() bool { return len(th.hub.Subscriptions()) == 1 })
		nc.Close()
		poll.Until(t, fmt.Sprintf("TLS client %d's departure noticed", i), 2*time.Second, func() bool { return len(th.hub.Subscriptions()) == 0 })
	}
}

// TestDepartureEventFollowsAtOnce: with subscription events on and no
// heartbeats, a client that hangs up is announced inactive (Mercure's
// disconnect event) and leaves the subscriptions API at once.
func TestDepartureEventFollowsAtOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("departures are watched with epoll, on Linux only")
	}
	th := newTestHub(t, ssetest.HTTP1, func(h *hub.Config, s *server.Config) {
		h.SubscriptionEvents = true
		s.Subscriptions = true
		s.Heartbeat = -1
	})
	const watch = "/.well-known/mercure/subscriptions{/topic}{/subscriber}"
	reader := http.Header{"Authorization": {"Bearer " + th.token(hub.Claims{Subscribe: []string{watch}})}}
	events := th.subscribe(topics(watch), reader)
	nc, _ := th.rawSubscribe(topics("https://example.com/leaving"))
	next := func(active bool) {
		t.Helper()
		for {
			ev := events.next() // bounded: 10 s
			if strings.Contains(ev.Data, "leaving") && strings.Contains(ev.Data, fmt.Sprintf(`"active":%v`, active)) {
				return
			}
		}
	}
	next(true)
	nc.Close()
	next(false)
	req, _ := http.NewRequest("GET", th.url+"/subscriptions", nil)
	req.Header = reader
	if status, body := th.do(req); status != http.StatusOK || strings.Contains(body, "leaving") {
		t.Errorf("subscriptions API after the departure: %d %s; want 200 without it", status, body)
	}
}
