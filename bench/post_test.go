package bench

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// closingHub is a stub hub; with faults on, its publish answers say
// "Connection: close" every fourth time and, once, it drops the
// connection without an answer.
type closingHub struct {
	stubHub
	faults    bool
	publishes atomic.Int64
	conns     atomic.Int64 // connections accepted
}

const abortedPublish = 7

func (h *closingHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && h.faults {
		switch k := h.publishes.Add(1); {
		case k == abortedPublish:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		case k%4 == 0:
			w.Header().Set("Connection", "close")
		}
	}
	h.stubHub.ServeHTTP(w, r)
}

func startClosingHub(t *testing.T, h *closingHub) Config {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			h.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return Config{Hub: srv.URL + "/.well-known/mercure"}
}

// TestPublishersKeepTheirConnections: over plain HTTP each publisher
// writes its requests on one connection of its own, for the whole run.
func TestPublishersKeepTheirConnections(t *testing.T) {
	h := &closingHub{}
	cfg := startClosingHub(t, h)
	cfg.Publishers, cfg.Updates = 3, 60
	rep := run(t, cfg)
	if rep.Published != 60 || rep.PublishErrors != 0 {
		t.Fatalf("published %d, %d failed; want 60, 0", rep.Published, rep.PublishErrors)
	}
	if n := h.conns.Load(); n != 3 {
		t.Errorf("%d connections for 3 publishers; want 3", n)
	}
}

// TestPublishersRecoverFromClosedConnections: a hub that closes a
// publisher's connection, with "Connection: close" or without answering,
// costs that one publish at most; the publisher goes on over a new one.
func TestPublishersRecoverFromClosedConnections(t *testing.T) {
	h := &closingHub{faults: true}
	cfg := startClosingHub(t, h)
	cfg.Subscribers, cfg.HotShare = 2, 1
	cfg.Publishers, cfg.Updates = 2, 40
	rep := run(t, cfg)
	if rep.Published != 39 || rep.PublishErrors != 1 {
		t.Fatalf("published %d, %d failed; want 39, 1 (the publish the hub dropped)", rep.Published, rep.PublishErrors)
	}
	if rep.Delivered != rep.Expected || rep.Expected != 2*39 {
		t.Errorf("delivered %d of %d expected; want all of %d", rep.Delivered, rep.Expected, 2*39)
	}
	// Two to start, one after each of the 10 closes and the drop, less
	// any that came last in a publisher's run; plus the subscribers'.
	if n := h.conns.Load() - 2; n < 2+8 || n > 2+11 {
		t.Errorf("%d publisher connections; want 10 to 13", n)
	}
}

// TestPublisherBoundsAResponse: a hub whose answer to a publish is
// headers without end costs the generator a bounded read, and the publish
// fails saying why.
func TestPublisherBoundsAResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var sent atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.Read(make([]byte, 4096)) // the request
				conn.Write([]byte("HTTP/1.1 200 OK\r\n"))
				line := []byte("X-Endless: " + strings.Repeat("y", 1000) + "\r\n")
				for sent.Load() < 64<<20 { // a bound of the test's own, far above the generator's
					n, err := conn.Write(line)
					sent.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	cfg := Config{Hub: "http://" + ln.Addr().String() + "/.well-known/mercure", Publishers: 1, Updates: 2, PublishTimeout: 5 * time.Second}
	rep := run(t, cfg)
	if rep.Published != 0 || rep.PublishErrors != 2 || !strings.Contains(rep.FirstPublishError, "too large") {
		t.Fatalf("published %d, %d failed (%q); want 0, 2, the response too large", rep.Published, rep.PublishErrors, rep.FirstPublishError)
	}
	if n := sent.Load(); n > 32<<20 {
		t.Errorf("the hub got %d bytes of headers out; the generator should stop reading at about 2 MiB per response", n)
	}
}
