package edge_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/ssekit/sse/internal/e2etest"
)

// TestPublishIn0RTTIsRefused: a publish sent in 0-RTT data (resuming a
// session, before the handshake completes; what a recorder of the packets
// could replay) gets 425 Too Early before the hub looks at it; the publish
// sent again after the handshake, on the same connection, is accepted and
// delivered. quic-go's http3 client sends only GET and HEAD in 0-RTT
// through RoundTrip (GET_0RTT, HEAD_0RTT), so the POST goes on a request
// stream of our own opened on the early connection. The client reaches
// the hub through a UDP relay that delays the hub's packets, so that the
// handshake cannot complete before the request is sent and read (on
// loopback it otherwise would within microseconds).
func TestPublishIn0RTTIsRefused(t *testing.T) {
	tc := e2etest.NewTestCert(t)
	args := append([]string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir()}, tc.Args()...)
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	tlsConf := &tls.Config{RootCAs: tc.Pool, ServerName: "127.0.0.1", ClientSessionCache: tls.NewLRUClientSessionCache(4), NextProtos: []string{http3.NextProtoH3}}

	// A first connection gets the session ticket 0-RTT resumes with.
	s := e2etest.OpenStream(t, h3Client(t, tc.Pool), h.URL(), "topic=early", "", e2etest.Timeout)
	first := &http3.Transport{TLSClientConfig: tlsConf}
	c := &http.Client{Transport: first}
	// The ticket comes just after the handshake, with the response.
	mustPublish(t, c, h.URL(), "warm-up", "", "ticket")
	first.Close()

	ctx, cancel := context.WithTimeout(t.Context(), e2etest.Timeout)
	defer cancel()
	conn, err := quic.DialAddrEarly(ctx, slowReplies(t, h.Addr, 300*time.Millisecond), tlsConf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	cc := (&http3.Transport{}).NewClientConn(conn)
	req := func() *http.Request {
		form := url.Values{"topic": {"early"}, "data": {"sent early"}}.Encode()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.URL(), strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+e2etest.PublisherToken(t, testSecret))
		return req
	}
	// In 0-RTT: a request stream opened on the early connection. Its
	// headers go at once; quic-go sends no body with SendRequestHeader
	// (content-length: 0), so the early POST is headers only: answered
	// 400 (no topic) if the hub processed it, 425 if it refuses it first.
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	early := req()
	early.Body = nil
	if err := str.SendRequestHeader(early); err != nil {
		t.Fatal(err)
	}
	str.Close()
	resp, err := str.ReadResponse()
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusTooEarly {
		t.Fatalf("a publish in 0-RTT: %s; want 425 Too Early", resp.Status)
	}
	if !conn.ConnectionState().Used0RTT {
		t.Fatal("the server did not take 0-RTT data: the test proved nothing")
	}
	// After the handshake, on the same connection (RoundTrip waits for
	// it), the publish is accepted.
	resp, err = cc.RoundTrip(req())
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the same publish after the handshake: %s; want 200", resp.Status)
	}
	// The subscriber gets it once: the refused one was not published.
	ev := s.Next(t)
	if ev.Data != "sent early" {
		t.Fatalf("got %+v", ev)
	}
}

// slowReplies relays UDP to addr for one client, holding each reply for
// delay; it returns the relay's address.
func slowReplies(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { front.Close() })
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	var client atomic.Pointer[net.UDPAddr]
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			client.Store(from)
			back.Write(buf[:n])
		}
	}()
	go func() {
		for {
			buf := make([]byte, 65536)
			n, err := back.Read(buf)
			if err != nil {
				return
			}
			time.AfterFunc(delay, func() {
				if to := client.Load(); to != nil {
					front.WriteToUDP(buf[:n], to)
				}
			})
		}
	}()
	return front.LocalAddr().String()
}
