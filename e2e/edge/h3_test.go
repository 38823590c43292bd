package edge_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
)

// h3Client speaks HTTP/3 only (quic-go's client), trusting pool.
func h3Client(t *testing.T, pool *x509.CertPool) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, QUICConfig: &quic.Config{MaxIdleTimeout: 30 * time.Second}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}
}

// TestHTTP3 subscribes and publishes over HTTP/3 with quic-go's client,
// checks the HTTPS side advertises it, and resumes after the hub restarts
// (SIGTERM: GOAWAY, the stream ends cleanly) with Last-Event-ID.
func TestHTTP3(t *testing.T) {
	tc := e2etest.NewTestCert(t)
	dataDir := t.TempDir()
	args := append([]string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", dataDir, "--heartbeat", "200ms"}, tc.Args()...)
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	c := h3Client(t, tc.Pool)

	s := e2etest.OpenStream(t, c, h.URL(), "topic=h3", "", 60*time.Second)
	if s.Resp.ProtoMajor != 3 {
		t.Fatalf("subscription over %s; want HTTP/3", s.Resp.Proto)
	}
	id1 := mustPublish(t, c, h.URL(), "h3", "", "over QUIC")
	if ev := s.Next(t); ev.ID != id1 || ev.Data != "over QUIC" {
		t.Fatalf("got %+v; want id %q", ev, id1)
	}

	// Over HTTP/1.1 and over HTTP/2 (the hub's own server, which must
	// see the same handler wrappers): browsers learn of HTTP/3 from it.
	t.Run("AltSvc", func(t *testing.T) {
		for _, h2 := range []bool{false, true} {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.Pool}, ForceAttemptHTTP2: h2}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get(h.Base() + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
				t.Errorf("served over %s; want HTTP/%d", resp.Proto, want)
			}
			_, port, _ := net.SplitHostPort(h.Addr)
			if got, want := resp.Header.Get("Alt-Svc"), `h3=":`+port+`"`; !strings.HasPrefix(got, want) {
				t.Errorf("Alt-Svc over %s: %q; want %s…", resp.Proto, got, want)
			}
		}
	})

	t.Run("Heartbeats", func(t *testing.T) {
		idle := e2etest.OpenStream(t, c, h.URL(), "topic=h3-idle", "", 60*time.Second)
		buf := make([]byte, 512)
		got := ""
		for strings.Count(got, ":") < 2 {
			n, err := idle.Resp.Body.Read(buf)
			if err != nil {
				t.Fatalf("idle stream after %q: %v", got, err)
			}
			got += string(buf[:n])
		}
	})

	// The restart: the stream ends without an error (GOAWAY, then the
	// end of the response), an update published while the hub is down
	// to another process on the same data comes by replay.
	if err := h.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, s.Resp.Body); err != nil && !errors.Is(err, io.EOF) {
		t.Errorf("stream at shutdown ended with %v; want its end (the hub ends it, after GOAWAY)", err)
	}
	if err := h.Wait(30 * time.Second); err != nil {
		t.Fatalf("hub exit: %v", err)
	}
	side := ssekit.Start(t, e2etest.HubSpec{Args: append([]string{"--http3=false"}, args...)})
	tcp := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.Pool}}
	t.Cleanup(tcp.CloseIdleConnections)
	id2 := mustPublish(t, &http.Client{Transport: tcp}, side.URL(), "h3", "", "while away")
	side.Cmd.Process.Signal(syscall.SIGTERM)
	if err := side.Wait(30 * time.Second); err != nil {
		t.Fatalf("side hub exit: %v", err)
	}
	h = ssekit.Start(t, e2etest.HubSpec{Addr: h.Addr, Args: args})
	c = h3Client(t, tc.Pool)
	s = e2etest.OpenStream(t, c, h.URL(), "topic=h3", id1, 60*time.Second)
	if ev := s.Next(t); ev.ID != id2 || ev.Data != "while away" {
		t.Fatalf("after the restart got %+v; want the missed %q", ev, id2)
	}
	id3 := mustPublish(t, c, h.URL(), "h3", "", "live again")
	if ev := s.Next(t); ev.ID != id3 {
		t.Fatalf("got %+v; want %q live", ev, id3)
	}
}

// TestHTTP3SlowReaderDropped: a subscriber over HTTP/3 that stops reading
// (its QUIC flow-control window fills) is dropped by the write deadline or
// its full queue, as over the other protocols, while a reading one on the
// same topic gets every update.
func TestHTTP3SlowReaderDropped(t *testing.T) {
	tc := e2etest.NewTestCert(t)
	args := append([]string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir(),
		"--write-timeout", "1s", "--queue-size", "64"}, tc.Args()...)
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	tcp := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.Pool}}
	t.Cleanup(tcp.CloseIdleConnections)
	c := &http.Client{Transport: tcp}

	stalled := e2etest.OpenStream(t, h3Client(t, tc.Pool), h.URL(), "topic=slow", "", 60*time.Second)
	_ = stalled // never read
	reader := e2etest.OpenStream(t, h3Client(t, tc.Pool), h.URL(), "topic=slow", "", 60*time.Second)
	got := make(chan int, 1)
	go func() {
		n := 0
		for n < 80 {
			if _, err := reader.Dec.Next(); err != nil {
				break
			}
			n++
		}
		got <- n
	}()
	big := strings.Repeat("x", 64<<10)
	for i := range 80 {
		mustPublish(t, c, h.URL(), "slow", "", fmt.Sprintf("%d %s", i, big))
	}
	if n := <-got; n != 80 {
		t.Fatalf("the reading subscriber got %d of 80 updates", n)
	}
	poll.Until(t, "the stalled HTTP/3 subscriber to be dropped", 30*time.Second, func() bool {
		return e2etest.Gauge(c, h.Base(), "ssekit_subscribers") == 1
	})
}
