package server_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/testenv"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/server/h2serve"
	"github.com/ssekit/sse/ssetest"
)

// serveTLS serves th's hub over TLS as `ssekit serve` does (the listener
// doing the handshake, with --lean-tls or not) and returns its address.
func serveTLS(t *testing.T, th *testHub, lean bool) string {
	t.Helper()
	certSrv := httptest.NewUnstartedServer(nil)
	certSrv.StartTLS() // for its test certificate
	cfg := certSrv.TLS.Clone()
	certSrv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: th.server}
	l := th.server.ListenerTLS(ln, cfg, hs.Handler, lean)
	if lean {
		hs.ConnContext = h2serve.ConnContext
		hs.Handler = h2serve.WithTLSState(hs.Handler)
	}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// subscribeTLS subscribes to topic over TLS HTTP/1.1 and returns the
// connection and the reader of the stream past the headers.
func subscribeTLS(t *testing.T, addr, topic string) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(nc, "GET /.well-known/mercure?topic=%s HTTP/1.1\r\nHost: x\r\n\r\n", topic)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe over TLS: %v %v", resp, err)
	}
	return nc, br
}

// TestLeanTLSSubscriberStalledCatchesUp: with --lean-tls a taken-over TLS
// 1.3 HTTP/1.1 subscriber is held as its bare socket (its records sealed
// by internal/tlsrecord, written without blocking); a client that stops
// reading while 16 MiB is sent gets every update in order once it reads.
func TestLeanTLSSubscriberStalledCatchesUp(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("bare sockets are Linux only")
	}
	th := newTestHub(t, ssetest.HTTP1, func(h *hub.Config, s *server.Config) {
		h.QueueSize = 100000
		s.WriteTimeout = 20 * time.Second
	})
	addr := serveTLS(t, th, true)
	nc, br := subscribeTLS(t, addr, "s")
	if v := nc.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("TLS version %x, want 1.3", v)
	}
	poll.Until(t, "the TLS connection held as a bare socket", 10*time.Second, func() bool {
		return server.RawSockets(th.server) == 1
	})
	big := strings.Repeat("z", 256<<10)
	const updates = 64
	for i := range updates {
		th.mustPublish(fmt.Sprint(i, big), "s")
	}
	readCatchUp(t, br, big, updates)
}

// TestLeanTLSDepartures: a bare TLS subscriber's client leaving by
// close_notify and FIN, or by RST, is noticed at once.
func TestLeanTLSDepartures(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("departures are watched with epoll, on Linux only")
	}
	th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) { s.Heartbeat = -1 })
	addr := serveTLS(t, th, true)
	for i, how := range []string{"close", "reset"} {
		nc, _ := subscribeTLS(t, addr, "tls")
		poll.Until(t, "the TLS subscriber held bare", 5*time.Second, func() bool { return server.RawSockets(th.server) == 1 })
		if how == "reset" {
			nc.NetConn().(*net.TCPConn).SetLinger(0)
			nc.NetConn().Close()
		} else {
			nc.Close()
		}
		poll.Until(t, fmt.Sprintf("departure %d (%s) noticed", i, how), 2*time.Second, func() bool { return len(th.hub.Subscriptions()) == 0 })
	}
}

// TestLeanTLSOffKeepsCryptoTLS: with --lean-tls=false a TLS HTTP/1.1
// subscriber stays a crypto/tls connection, and is served.
func TestLeanTLSOffKeepsCryptoTLS(t *testing.T) {
	th := newTestHub(t, ssetest.HTTP1, nil)
	addr := serveTLS(t, th, false)
	_, br := subscribeTLS(t, addr, "off")
	poll.Until(t, "the TLS subscriber listed", 5*time.Second, func() bool { return len(th.hub.Subscriptions()) == 1 })
	if n := server.RawSockets(th.server); n != 0 {
		t.Fatalf("%d bare sockets with --lean-tls=false", n)
	}
	th.mustPublish("hello", "off")
	for ev, err := range sse.NewDecoder(br).Events() {
		if err != nil || ev.Data != "hello" {
			t.Fatalf("event %q, %v", ev.Data, err)
		}
		return
	}
}

// TestLeanTLSClientRecords: what a bare TLS subscriber's client sends is
// read through the record layer on readiness: close_notify alone (no
// FIN) and application data (a subscriber has nothing more to say) are
// departures noticed at once.
func TestLeanTLSClientRecords(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("bare sockets are Linux only")
	}
	th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) { s.Heartbeat = -1 })
	addr := serveTLS(t, th, true)
	for _, how := range []string{"close_notify", "garbage"} {
		nc, _ := subscribeTLS(t, addr, "tls")
		poll.Until(t, "the TLS subscriber held bare", 5*time.Second, func() bool { return server.RawSockets(th.server) == 1 })
		if how == "garbage" {
			fmt.Fprintf(nc, "GET / HTTP/1.1\r\n\r\n")
		} else if err := nc.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, how+" noticed", 2*time.Second, func() bool { return len(th.hub.Subscriptions()) == 0 })
	}
}

// TestLeanTLSOpenSSLKeyUpdate: openssl s_client subscribes over TLS 1.3
// HTTP/1.1 and asks for a KeyUpdate ("k"): the bare subscriber answers
// with its own, stays subscribed, and the next update decrypts.
func TestLeanTLSOpenSSLKeyUpdate(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("bare sockets are Linux only")
	}
	openssl := testenv.NeedCommand(t, "openssl")
	th := newTestHub(t, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) { s.Heartbeat = -1 })
	addr := serveTLS(t, th, true)
	cmd := exec.Command(openssl, "s_client", "-connect", addr, "-tls1_3", "-alpn", "http/1.1")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		r := bufio.NewReader(out)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				close(lines)
				return
			}
			lines <- strings.TrimSpace(l)
		}
	}()
	fmt.Fprint(in, "GET /.well-known/mercure?topic=ku HTTP/1.1\nHost: x\n\n")
	poll.Until(t, "the openssl subscriber held bare", 10*time.Second, func() bool { return server.RawSockets(th.server) == 1 })
	want := func(data string) {
		t.Helper()
		th.mustPublish(data, "ku")
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					cmd.Wait()
					t.Fatalf("s_client ended before %q: %s", data, stderr.String())
				}
				if l == "data:"+data || l == "data: "+data {
					return
				}
			case <-timeout:
				t.Fatalf("no %q", data)
			}
		}
	}
	want("before")
	fmt.Fprintln(in, "k")
	time.Sleep(300 * time.Millisecond) // s_client takes a command from a read of its own
	want("after")
	if n := len(th.hub.Subscriptions()); n != 1 {
		t.Fatalf("%d subscriptions after the KeyUpdate, want 1", n)
	}
}

// TestLeanTLSStalledClientIsEndedAsSlow: a bare TLS subscriber that never
// reads is ended as slow (its connection closed) while another one on the
// same topic keeps getting every update: the sealed-but-unsent rest kept
// by the record layer does not exempt it from the slow-reader limit.
func TestLeanTLSStalledClientIsEndedAsSlow(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("bare sockets are Linux only")
	}
	metrics := &reasons{got: map[string]int{}}
	th := newTestHub(t, ssetest.HTTP1, func(h *hub.Config, s *server.Config) {
		h.Metrics = metrics
		h.QueueSize = 100000
		s.WriteTimeout = 300 * time.Millisecond
		s.Writers = 1
	})
	addr := serveTLS(t, th, true)
	stalled, _ := subscribeTLS(t, addr, "s")
	_, fastR := subscribeTLS(t, addr, "s")
	poll.Until(t, "both held bare", 5*time.Second, func() bool { return server.RawSockets(th.server) == 2 })
	fast := sse.NewDecoder(fastR)
	big := strings.Repeat("y", 256<<10)
	for i := 0; i < 400 && metrics.count(hub.DisconnectSlow) == 0; i++ { // as in TestStalledClientIsEndedAsSlow
		th.mustPublish(fmt.Sprint(i, big), "s")
		ev, err := fast.Next()
		if err != nil || ev.Data != fmt.Sprint(i, big) {
			t.Fatalf("fast subscriber: update %d wrong (%v)", i, err)
		}
	}
	poll.Until(t, "the stalled client ended as slow", 30*time.Second, func() bool { return metrics.count(hub.DisconnectSlow) > 0 })
	poll.Until(t, "the stalled subscriber gone", 30*time.Second, func() bool { return len(th.hub.Subscriptions()) == 1 })
	_ = stalled
}
