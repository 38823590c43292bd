package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/server"
)

// rawHub is a test hub served over HTTP/1.1 either by net/http alone or,
// as ssekit serve does, through Server.Listener (publishers' connections
// taken over).
type rawHub struct {
	t    *testing.T
	tb   *testhub.Hub
	addr string
}

func newRawHub(t *testing.T, listener bool, configure func(*server.Config)) *rawHub {
	t.Helper()
	tb := testhub.New(t, func(_ *hub.Config, s *server.Config) {
		s.AllowAnonymous = false
		s.MaxBodyBytes = 1024
		s.CORSOrigins = []string{"https://app.example"}
		if configure != nil {
			configure(s)
		}
	})
	hs := httptest.NewUnstartedServer(tb.Server)
	hs.Config.ReadHeaderTimeout = 10 * time.Second
	hs.Config.IdleTimeout = time.Minute
	if listener {
		hs.Listener = tb.Server.Listener(hs.Listener, nil, nil)
	}
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(tb.Close)
	return &rawHub{t: t, tb: tb, addr: hs.Listener.Addr().String()}
}

func (h *rawHub) dial() *rawConn {
	h.t.Helper()
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { nc.Close() })
	return &rawConn{t: h.t, nc: nc, br: bufio.NewReader(nc)}
}

type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// do sends raw and returns the raw answer (head and body).
func (c *rawConn) do(raw string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, raw); err != nil {
		c.t.Fatal(err)
	}
	return c.read()
}

func (c *rawConn) read() string {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var head strings.Builder
	n := -1
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading an answer: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	if n < 0 {
		c.t.Fatalf("answer without Content-Length: %q", head.String())
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		c.t.Fatal(err)
	}
	return head.String() + string(body)
}

// closed reports whether the hub closed the connection (read EOF).
func (c *rawConn) closed() bool {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.br.ReadByte()
	return err == io.EOF
}

func publishRaw(token, body string, header ...string) string {
	var b strings.Builder
	b.WriteString("POST /.well-known/mercure HTTP/1.1\r\nHost: hub.example\r\n")
	if token != "" {
		b.WriteString("Authorization: Bearer " + token + "\r\n")
	}
	ct := "application/x-www-form-urlencoded"
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Content-Type" {
			ct = header[i+1]
			continue
		}
		b.WriteString(header[i] + ": " + header[i+1] + "\r\n")
	}
	if ct != "" {
		b.WriteString("Content-Type: " + ct + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	return b.String()
}

var dateLine = regexp.MustCompile(`(?m)^Date: .*\r$`)

// TestTakenOverAnswersAsNetHTTP sends the same publishes to a hub served
// by net/http alone and to one whose publishers' connections are taken
// over, and wants the same bytes back (Date aside): statuses, reasons,
// headers and their order, keep-alive or close.
func TestTakenOverAnswersAsNetHTTP(t *testing.T) {
	plain, lean := newRawHub(t, false, nil), newRawHub(t, true, nil)
	tok := plain.tb.Token(t, hub.Claims{Publish: []string{"*"}})
	booksOnly := plain.tb.Token(t, hub.Claims{Publish: []string{"https://example.com/books/{id}"}})
	subscriberOnly := plain.tb.Token(t, hub.Claims{Subscribe: []string{"*"}})
	big := strings.Repeat("x", 2000)
	cases := []struct{ name, raw string }{
		{"published", publishRaw(tok, "topic=t&data=hello&id=a1")},
		{"published, private, retry, type", publishRaw(tok, "topic=t&topic=u&data=x&id=a2&private=on&retry=500&type=e")},
		{"duplicate id", publishRaw(tok, "topic=t&data=again&id=a1")},
		{"no token", publishRaw("", "topic=t&data=x")},
		{"not a bearer", publishRaw("", "topic=t&data=x", "Authorization", "Basic Zm9vOmJhcg==")},
		{"bad token", publishRaw("not.a.token", "topic=t&data=x")},
		{"subscriber token", publishRaw(subscriberOnly, "topic=t&data=x")},
		{"topic not granted", publishRaw(booksOnly, "topic=https://example.com/films/1&data=x")},
		{"wrong content type", publishRaw(tok, `{"topic":"t"}`, "Content-Type", "application/json")},
		{"no content type", publishRaw(tok, "topic=t", "Content-Type", "")},
		{"content type with charset", publishRaw(tok, "topic=t&data=cs&id=a3", "Content-Type", "application/x-www-form-urlencoded; charset=utf-8")},
		{"body too large", publishRaw(tok, "topic=t&data="+big)},
		{"missing topic", publishRaw(tok, "data=x")},
		{"empty topic", publishRaw(tok, "topic=&data=x")},
		{"bad retry", publishRaw(tok, "topic=t&retry=soon")},
		{"reserved type", publishRaw(tok, "topic=t&type=mercure")},
		{"malformed form", publishRaw(tok, "topic=t&data=%zz")},
		{"semicolon", publishRaw(tok, "topic=t;data=x")},
		{"control character in id", publishRaw(tok, "topic=t&id=a%01b")},
		{"CORS origin", publishRaw(tok, "topic=t&data=cors&id=a4", "Origin", "https://app.example")},
		{"other origin", publishRaw(tok, "topic=t&data=o&id=a5", "Origin", "https://evil.example")},
		{"cookie token, foreign origin", publishRaw("", "topic=t&data=x", "Cookie", "mercureAuthorization="+tok, "Origin", "https://evil.example")},
		{"repeated header", publishRaw(tok, "topic=t&data=r&id=a6", "X-Thing", "1", "X-Thing", "2")},
		{"lower-case names", strings.Replace(publishRaw(tok, "topic=t&data=lc&id=a7"), "Content-Length", "content-length", 1)},
		{"connection close", publishRaw(tok, "topic=t&data=bye&id=a8", "Connection", "close")},
	}
	warm := 0
	conns := map[*rawHub]*rawConn{}
	// answer sends raw on h's current connection, opened (and taken
	// over, by a first publish) when there is none.
	answer := func(h *rawHub, raw string) string {
		c := conns[h]
		if c == nil {
			c = h.dial()
			warm++
			if got := c.do(publishRaw(tok, fmt.Sprintf("topic=w&data=warm&id=warm%d", warm))); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
				t.Fatalf("warm-up publish: %q", got)
			}
			conns[h] = c
		}
		got := c.do(raw)
		if strings.Contains(got, "\r\nConnection: close\r\n") {
			if !c.closed() {
				t.Errorf("answer says Connection: close, the connection stays open")
			}
			conns[h] = nil
		}
		return dateLine.ReplaceAllString(got, "Date: (date)\r")
	}
	for _, tc := range cases {
		want := answer(plain, tc.raw)
		warm-- // the same warm-up id on both hubs
		got := answer(lean, tc.raw)
		if got != want {
			t.Errorf("%s:\nnet/http:   %q\ntaken over: %q", tc.name, want, got)
		}
	}
}

// TestTakenOverConnectionHandsBack: after publishes on a taken-over
// connection, other requests on it are net/http's again (health, a
// subscription, a big head), and publishes after them are answered.
func TestTakenOverConnectionHandsBack(t *testing.T) {
	h := newRawHub(t, true, nil)
	tok := h.tb.Token(t, hub.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}})
	c := h.dial()
	for i := range 3 {
		if got := c.do(publishRaw(tok, "topic=t&data=x&id=p"+strconv.Itoa(i))); !strings.HasSuffix(got, "\r\n\r\np"+strconv.Itoa(i)) {
			t.Fatalf("publish %d: %q", i, got)
		}
	}
	if got := c.do("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, "ok\n") {
		t.Fatalf("health on a taken-over connection: %q", got)
	}
	if got := c.do(publishRaw(tok, "topic=t&data=x&id=p3")); !strings.HasSuffix(got, "p3") {
		t.Fatalf("publish after the hand-back: %q", got)
	}
	// A head larger than the read buffer, and a query string: net/http's.
	if got := c.do(publishRaw(tok, "topic=t&data=x&id=p4", "X-Pad", strings.Repeat("p", 6000))); !strings.HasSuffix(got, "p4") {
		t.Fatalf("publish with a big head: %q", got)
	}
	if got := c.do(strings.Replace(publishRaw(tok, "topic=t&data=x&id=p5"), hub.Path, hub.Path+"?x=1", 1)); !strings.HasSuffix(got, "p5") {
		t.Fatalf("publish with a query string: %q", got)
	}
	// Malformed heads get net/http's own answer.
	if got := c.do(publishRaw(tok, "topic=t&data=x&id=p6")); !strings.HasSuffix(got, "p6") {
		t.Fatal(got)
	}
	io.WriteString(c.nc, "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n")
	line, _ := c.br.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 400 ") {
		t.Fatalf("malformed header on a taken-over connection: %q", line)
	}

	// A subscription on a taken-over connection streams.
	c2 := h.dial()
	if got := c2.do(publishRaw(tok, "topic=t&data=x&id=s0")); !strings.HasSuffix(got, "s0") {
		t.Fatal(got)
	}
	io.WriteString(c2.nc, "GET /.well-known/mercure?topic=live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tok+"\r\n\r\n")
	_ = c2.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := c2.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200 ") {
		t.Fatalf("subscribe on a taken-over connection: %q %v", status, err)
	}
	c3 := h.dial()
	for i := 0; ; i++ {
		// Until the subscriber is registered, updates may go before it.
		c3.do(publishRaw(tok, "topic=live&data=delivered&id=l"+strconv.Itoa(i)))
		_ = c2.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		found := false
		for {
			line, err := c2.br.ReadString('\n')
			if err != nil {
				break
			}
			if strings.HasPrefix(line, "data:delivered") {
				found = true
				break
			}
		}
		if found {
			break
		}
		if i == 50 {
			t.Fatal("the subscriber on a handed-back connection got nothing")
		}
	}
}

// TestTakenOverPipelined: requests sent together are answered in order.
func TestTakenOverPipelined(t *testing.T) {
	h := newRawHub(t, true, nil)
	tok := h.tb.Token(t, hub.Claims{Publish: []string{"*"}})
	c := h.dial()
	c.do(publishRaw(tok, "topic=t&data=x&id=first"))
	var all strings.Builder
	for i := range 5 {
		all.WriteString(publishRaw(tok, "topic=t&data=x&id=q"+strconv.Itoa(i)))
	}
	all.WriteString("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	io.WriteString(c.nc, all.String())
	for i := range 5 {
		if got := c.read(); !strings.HasSuffix(got, "q"+strconv.Itoa(i)) {
			t.Fatalf("answer %d: %q", i, got)
		}
	}
	if got := c.read(); !strings.HasSuffix(got, "ok\n") {
		t.Fatalf("pipelined health: %q", got)
	}
}

// TestTakenOverSlowBody: a publisher that stops sending mid-body on a
// taken-over connection gets 408 after BodyTimeout, the connection ends,
// and nothing of the update is stored.
func TestTakenOverSlowBody(t *testing.T) {
	h := newRawHub(t, true, func(s *server.Config) { s.BodyTimeout = 300 * time.Millisecond })
	tok := h.tb.Token(t, hub.Claims{Publish: []string{"*"}})
	c := h.dial()
	c.do(publishRaw(tok, "topic=t&data=x&id=first"))
	full := publishRaw(tok, "topic=t&data=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx&id=cut")
	io.WriteString(c.nc, full[:len(full)-20])
	got := c.read()
	if !strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, "Connection: close\r\n") {
		t.Fatalf("cut body: %q", got)
	}
	if !c.closed() {
		t.Fatal("the connection stays open after a cut body")
	}
	if got := h.dial().do(publishRaw(tok, "topic=t&data=x&id=cut")); !strings.HasSuffix(got, "\r\n\r\ncut") {
		t.Fatalf("the cut update was stored (id taken): %q", got)
	}
}

// TestTakenOverSlowHead: a head that stops mid-way on a taken-over
// connection is ended by the http.Server's ReadHeaderTimeout, as
// net/http ends it, and a head that never ends (past the read buffer) is
// net/http's, bounded by its MaxHeaderBytes.
func TestTakenOverSlowHead(t *testing.T) {
	tb := testhub.New(t, nil)
	hs := httptest.NewUnstartedServer(tb.Server)
	hs.Config.ReadHeaderTimeout = 300 * time.Millisecond
	hs.Config.MaxHeaderBytes = 8 << 10
	hs.Listener = tb.Server.Listener(hs.Listener, nil, nil)
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(tb.Close)
	h := &rawHub{t: t, tb: tb, addr: hs.Listener.Addr().String()}
	tok := tb.Token(t, hub.Claims{Publish: []string{"*"}})
	c := h.dial()
	c.do(publishRaw(tok, "topic=t&data=x&id=first"))
	full := publishRaw(tok, "topic=t&data=x&id=slow")
	io.WriteString(c.nc, full[:40])
	if !c.closed() {
		t.Fatal("a head cut mid-way outlives ReadHeaderTimeout")
	}
	c = h.dial()
	c.do(publishRaw(tok, "topic=t&data=x&id=second"))
	io.WriteString(c.nc, "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nX-Pad: "+strings.Repeat("p", 20<<10)+"\r\n\r\n")
	line, _ := c.br.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 431 ") {
		t.Fatalf("a head past MaxHeaderBytes: %q", line)
	}
}

// TestTakenOverShutdown: Shutdown closes idle taken-over connections.
func TestTakenOverShutdown(t *testing.T) {
	h := newRawHub(t, true, nil)
	tok := h.tb.Token(t, hub.Claims{Publish: []string{"*"}})
	c := h.dial()
	c.do(publishRaw(tok, "topic=t&data=x&id=first"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go h.tb.Server.Shutdown(ctx)
	if !c.closed() {
		t.Fatal("an idle taken-over connection stays open after Shutdown")
	}
}

// TestTakenOverIdleTimeout: an idle taken-over connection is closed after
// the http.Server's IdleTimeout.
func TestTakenOverIdleTimeout(t *testing.T) {
	tb := testhub.New(t, nil)
	hs := httptest.NewUnstartedServer(tb.Server)
	hs.Config.IdleTimeout = 200 * time.Millisecond
	hs.Listener = tb.Server.Listener(hs.Listener, nil, nil)
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(tb.Close)
	h := &rawHub{t: t, tb: tb, addr: hs.Listener.Addr().String()}
	c := h.dial()
	if got := c.do(publishRaw(tb.Token(t, hub.Claims{Publish: []string{"*"}}), "topic=t&data=x")); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Fatal(got)
	}
	if !c.closed() {
		t.Fatal("an idle taken-over connection outlives IdleTimeout")
	}
}

// The Go client's keep-alive publishes go through the taken-over path
// and its answers parse.
func TestTakenOverGoClient(t *testing.T) {
	h := newRawHub(t, true, nil)
	tok := h.tb.Token(t, hub.Claims{Publish: []string{"*"}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for i := range 20 {
		req, _ := http.NewRequest("POST", "http://"+h.addr+hub.Path, strings.NewReader(url.Values{"topic": {"t"}, "id": {"g" + strconv.Itoa(i)}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "g"+strconv.Itoa(i) {
			t.Fatalf("publish %d: %d %q", i, resp.StatusCode, body)
		}
	}
}
