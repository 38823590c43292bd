package h2serve_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/server/h2serve"
)

// serve starts an HTTP/1.1 server on 127.0.0.1 whose listener hands h2c
// connections to an h2serve.Server for h; it returns the address.
func serve(t *testing.T, cfg h2serve.Config) (string, *h2serve.Server) {
	t.Helper()
	s, err := h2serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: cfg.Handler}
	go hs.Serve(s.Listener(ln, nil))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		s.Close(ctx)
	})
	return ln.Addr().String(), s
}

// h2cClient is net/http's client speaking h2c with prior knowledge.
func h2cClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// attacker is a raw HTTP/2 client on x/net's Framer.
type attacker struct {
	t      *testing.T
	nc     net.Conn
	fr     *http2.Framer
	frames chan http2.Frame
	done   chan error // the read side's end
	enc    *hpack.Encoder
	buf    bytes.Buffer
}

func dial(t *testing.T, addr string, settings ...http2.Setting) *attacker {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	a := &attacker{t: t, nc: nc, fr: http2.NewFramer(nc, nc), frames: make(chan http2.Frame, 1<<16), done: make(chan error, 1)}
	a.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	a.enc = hpack.NewEncoder(&a.buf)
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := a.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return a
}

// read starts reading frames into a.frames.
func (a *attacker) read() *attacker {
	go func() {
		for {
			f, err := a.fr.ReadFrame()
			if err != nil {
				a.done <- err
				close(a.frames)
				return
			}
			if d, ok := f.(*http2.DataFrame); ok { // its bytes are the Framer's
				f = &data{id: d.StreamID, data: bytes.Clone(d.Data()), end: d.StreamEnded()}
			}
			select {
			case a.frames <- f:
			default: // the test looks for one frame: the rest may go
			}
		}
	}()
	return a
}

// block encodes a GET (or method) request for path.
func (a *attacker) block(method, path string, extra ...string) []byte {
	a.buf.Reset()
	fields := []string{":method", method, ":scheme", "http", ":authority", "test", ":path", path}
	fields = append(fields, extra...)
	for i := 0; i < len(fields); i += 2 {
		a.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(a.buf.Bytes())
}

func (a *attacker) get(id uint32, path string) error {
	return a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: a.block("GET", path), EndStream: true, EndHeaders: true})
}

// waitFor returns the first frame match accepts, failing after 10 s or
// when the connection ends first.
func (a *attacker) waitFor(what string, match func(http2.Frame) bool) http2.Frame {
	a.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-a.frames:
			if !ok {
				a.t.Fatalf("connection ended before %s", what)
			}
			if match(f) {
				return f
			}
		case <-timeout:
			a.t.Fatalf("no %s within 10 s", what)
		}
	}
}

// waitGoAwayOrEnd reports the GOAWAY code the server sent, or -1 if the
// connection just ended, within 10 s.
func (a *attacker) waitGoAwayOrEnd() int {
	a.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-a.frames:
			if !ok {
				return -1
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				return int(g.ErrCode)
			}
		case <-timeout:
			a.t.Fatal("connection neither went away nor ended within 10 s")
		}
	}
}

// data is a DATA frame copied out of the Framer.
type data struct {
	http2.FrameHeader
	id   uint32
	data []byte
	end  bool
}

func isData(f http2.Frame) bool { _, ok := f.(*data); return ok }

func isHeaders(id uint32) func(http2.Frame) bool {
	return func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		return ok && h.StreamID == id
	}
}

func TestRequestsAndBodiesBothWays(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB: past every window
	addr, _ := serve(t, h2serve.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "not HTTP/2", http.StatusHTTPVersionNotSupported)
			return
		}
		switch r.URL.Path {
		case "/echo":
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d %v", n, err)
		case "/big":
			io.WriteString(w, big)
		default:
			http.NotFound(w, r)
		}
	})})
	c := h2cClient()
	resp, err := c.Post("http://"+addr+"/echo", "text/plain", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d <nil>", len(big)); string(body) != want || resp.ProtoMajor != 2 {
		t.Fatalf("POST 1 MiB: %s %q; want HTTP/2 %q", resp.Proto, body, want)
	}
	resp, err = c.Get("http://" + addr + "/big")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != big {
		t.Fatalf("GET 1 MiB: got %d bytes; want %d", len(body), len(big))
	}
	// HTTP/1.1 on the same port still reaches net/http.
	resp, err = http.Get("http://" + addr + "/big")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusHTTPVersionNotSupported || resp.ProtoMajor != 1 {
		t.Fatalf("HTTP/1.1: %s %d", resp.Proto, resp.StatusCode)
	}
}

// TestSmallClientWindow: a client granting 10 bytes at a time still gets
// all of a response, in frames no larger than its window.
func TestSmallClientWindow(t *testing.T) {
	addr, _ := serve(t, h2serve.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 100))
	})})
	a := dial(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10}).read()
	if err := a.get(1, "/"); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < 100 {
		f := a.waitFor("DATA", isData).(*data)
		if n := len(f.data); n > 10 {
			t.Fatalf("a DATA frame of %d bytes past a window of 10", n)
		}
		got += len(f.data)
		if got < 100 {
			a.fr.WriteWindowUpdate(1, uint32(len(f.data)))
			a.fr.WriteWindowUpdate(0, uint32(len(f.data)))
		}
	}
}

// TestRapidReset (CVE-2023-44487): a client that opens streams and
// resets them at once makes the server run at most MaxHandlers handlers
// at a time, and is sent away (ENHANCE_YOUR_CALM) once it has reset more
// than a burst of streams before their answer.
func TestRapidReset(t *testing.T) {
	var running, most atomic.Int64
	release := make(chan struct{})
	defer close(release)
	addr, _ := serve(t, h2serve.Config{MaxHandlers: 4, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		select { // a slow handler that does not watch its context
		case <-release:
		case <-time.After(50 * time.Millisecond):
		}
	})})
	a := dial(t, addr).read()
	var err error
	for id := uint32(1); id < 2*5000 && err == nil; id += 2 {
		if err = a.get(id, "/"); err == nil {
			err = a.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
	}
	if code := a.waitGoAwayOrEnd(); code != int(http2.ErrCodeEnhanceYourCalm) && err == nil {
		t.Fatalf("after 5,000 resets: GOAWAY code %d; want ENHANCE_YOUR_CALM", code)
	}
	if m := most.Load(); m > 4 {
		t.Fatalf("%d handlers ran at once; want at most MaxHandlers (4)", m)
	}
}

// TestContinuationFlood (CVE-2024-27316): endless CONTINUATION frames,
// empty or full, end the connection once the header block passes the
// header-list bound, without the server buffering them.
func TestContinuationFlood(t *testing.T) {
	for _, size := range []int{0, 16 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			addr, _ := serve(t, h2serve.Config{MaxHeaderListSize: 4 << 10, Handler: http.NotFoundHandler()})
			a := dial(t, addr).read()
			blk := a.block("GET", "/")
			if err := a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk}); err != nil {
				t.Fatal(err)
			}
			// A literal header never finishing: a long name's bytes.
			frag := bytes.Repeat([]byte{0}, size)
			var err error
			sent := 0
			for i := 0; i < 200000 && err == nil; i++ {
				err = a.fr.WriteContinuation(1, false, frag)
				sent += 9 + size
				if sent > 64<<20 {
					break
				}
			}
			if code := a.waitGoAwayOrEnd(); code == int(http2.ErrCodeNo) {
				t.Fatalf("GOAWAY NO_ERROR after a CONTINUATION flood; want an error or the connection closed")
			}
			if err == nil {
				t.Fatalf("the server took %d bytes of CONTINUATION frames", sent)
			}
		})
	}
}

// TestControlFloods: PING, SETTINGS, WINDOW_UPDATE, empty DATA and
// PRIORITY frames sent without end (and without reading the answers) get
// the connection closed; the server keeps serving others.
func TestControlFloods(t *testing.T) {
	floods := map[string]func(fr *http2.Framer) error{
		"ping":          func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{1}) },
		"settings":      func(fr *http2.Framer) error { return fr.WriteSettings() },
		"window_update": func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1) },
		"priority": func(fr *http2.Framer) error {
			return fr.WritePriority(3, http2.PriorityParam{StreamDep: 5, Weight: 1})
		},
	}
	for name, flood := range floods {
		t.Run(name, func(t *testing.T) {
			addr, _ := serve(t, h2serve.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			})})
			a := dial(t, addr) // never reads
			var err error
			for i := 0; i < 1_000_000 && err == nil; i++ {
				_ = a.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				err = flood(a.fr)
			}
			if err == nil {
				t.Fatal("a million frames taken")
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the flood stalled instead of being ended: %v", err)
			}
			resp, err := h2cClient().Get("http://" + addr + "/")
			if err != nil {
				t.Fatalf("another client after the flood: %v", err)
			}
			resp.Body.Close()
		})
	}
}

// TestHeaderListTooLarge: a request whose headers pass MaxHeaderListSize
// is answered 431 and the connection serves on.
func TestHeaderListTooLarge(t *testing.T) {
	addr, _ := serve(t, h2serve.Config{MaxHeaderListSize: 8 << 10, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	a := dial(t, addr).read()
	v := strings.Repeat("a", 3<<10)
	blk := a.block("GET", "/", "x-a", v, "x-b", v, "x-c", v, "x-d", v)
	if err := a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	h := a.waitFor("the answer", isHeaders(1)).(*http2.MetaHeadersFrame)
	if got := h.PseudoValue("status"); got != "431" {
		t.Fatalf("status %s; want 431", got)
	}
	if err := a.get(3, "/"); err != nil {
		t.Fatal(err)
	}
	h = a.waitFor("the next answer", isHeaders(3)).(*http2.MetaHeadersFrame)
	if got := h.PseudoValue("status"); got != "200" {
		t.Fatalf("status %s after the 431; want 200", got)
	}
}

// TestTakeOver: a handler hands its stream over and returns; the stream
// is then written, noticed reset at once, and holds no goroutine.
func TestTakeOver(t *testing.T) {
	streams := make(chan *h2serve.Stream, 100)
	gone := make(chan struct{}, 100)
	addr, _ := serve(t, h2serve.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		st, err := w.(h2serve.TakeOver).TakeOver()
		if err != nil {
			t.Error(err)
			return
		}
		st.Watch(func() {}, func() { gone <- struct{}{} })
		streams <- st
	})})
	a := dial(t, addr).read()
	if err := a.get(1, "/"); err != nil {
		t.Fatal(err)
	}
	h := a.waitFor("the response head", isHeaders(1)).(*http2.MetaHeadersFrame)
	if h.StreamEnded() || h.PseudoValue("status") != "200" {
		t.Fatalf("head: status %s, ended %v", h.PseudoValue("status"), h.StreamEnded())
	}
	st := <-streams
	if n, err := st.Write([]byte("data: hi\n\n")); n != 10 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	d := a.waitFor("the event", isData).(*data)
	if string(d.data) != "data: hi\n\n" {
		t.Fatalf("DATA %q", d.data)
	}
	a.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the reset was not noticed")
	}
	if _, err := st.Write([]byte("x")); !errors.Is(err, h2serve.ErrStreamGone) {
		t.Fatalf("Write after the reset: %v; want ErrStreamGone", err)
	}
}

// TestGoAwayOnClose: Close sends GOAWAY, lets the open stream end, then
// closes the connection.
func TestGoAwayOnClose(t *testing.T) {
	streams := make(chan *h2serve.Stream, 1)
	addr, s := serve(t, h2serve.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := w.(h2serve.TakeOver).TakeOver()
		streams <- st
	})})
	a := dial(t, addr).read()
	a.get(1, "/")
	st := <-streams
	s.GoAway()
	a.waitFor("GOAWAY", func(f http2.Frame) bool {
		g, ok := f.(*http2.GoAwayFrame)
		return ok && g.ErrCode == http2.ErrCodeNo && g.LastStreamID == 1
	})
	st.Close()
	a.waitFor("the stream's end", func(f http2.Frame) bool {
		d, ok := f.(*data)
		return ok && d.end
	})
	poll.Until(t, "the connection closed", 10*time.Second, func() bool {
		select {
		case <-a.done:
			return true
		default:
			return false
		}
	})
}
