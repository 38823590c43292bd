package h2serve_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/ssekit/sse/internal/h2test"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/server/h2serve"
)

// serve starts an HTTP/1.1 server on 127.0.0.1 whose listener hands h2c
// connections to an h2serve.Server for h; it returns the address.
func serve(t *testing.T, cfg h2serve.Config) (string, *h2serve.Server) {
	t.Helper()
	if cfg.Poller == nil {
		cfg.Poller = testPoller()
	}
	s, err := h2serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: cfg.Handler}
	go hs.Serve(s.Listener(ln, nil, nil))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		s.Close(ctx)
	})
	return ln.Addr().String(), s
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
	c := h2test.Client(t, nil)
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
	a := h2test.Dial(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10}).Read()
	if err := a.Get(1, "/"); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < 100 {
		f := a.WaitFor("DATA", h2test.IsData).(*h2test.Data)
		if n := len(f.Data); n > 10 {
			t.Fatalf("a DATA frame of %d bytes past a window of 10", n)
		}
		got += len(f.Data)
		if got < 100 {
			a.Fr.WriteWindowUpdate(1, uint32(len(f.Data)))
			a.Fr.WriteWindowUpdate(0, uint32(len(f.Data)))
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
	a := h2test.Dial(t, addr).Read()
	var err error
	for id := uint32(1); id < 2*5000 && err == nil; id += 2 {
		if err = a.Get(id, "/"); err == nil {
			err = a.Fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
	}
	if code := a.WaitGoAwayOrEnd(); code != int(http2.ErrCodeEnhanceYourCalm) && err == nil {
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
			a := h2test.Dial(t, addr).Read()
			blk := a.Block("GET", "/")
			if err := a.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk}); err != nil {
				t.Fatal(err)
			}
			// A literal header never finishing: a long name's bytes.
			frag := bytes.Repeat([]byte{0}, size)
			var err error
			sent := 0
			for i := 0; i < 200000 && err == nil; i++ {
				err = a.Fr.WriteContinuation(1, false, frag)
				sent += 9 + size
				if sent > 64<<20 {
					break
				}
			}
			if code := a.WaitGoAwayOrEnd(); code == int(http2.ErrCodeNo) {
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
		"settings_ack":  func(fr *http2.Framer) error { return fr.WriteSettingsAck() },
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
			a := h2test.Dial(t, addr) // never reads
			var err error
			for i := 0; i < 1_000_000 && err == nil; i++ {
				_ = a.NC.SetWriteDeadline(time.Now().Add(10 * time.Second))
				err = flood(a.Fr)
			}
			if err == nil {
				t.Fatal("a million frames taken")
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the flood stalled instead of being ended: %v", err)
			}
			resp, err := h2test.Client(t, nil).Get("http://" + addr + "/")
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
	a := h2test.Dial(t, addr).Read()
	v := strings.Repeat("a", 3<<10)
	blk := a.Block("GET", "/", "x-a", v, "x-b", v, "x-c", v, "x-d", v)
	if err := a.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	h := a.WaitFor("the answer", h2test.IsHeaders(1)).(*http2.MetaHeadersFrame)
	if got := h.PseudoValue("status"); got != "431" {
		t.Fatalf("status %s; want 431", got)
	}
	if err := a.Get(3, "/"); err != nil {
		t.Fatal(err)
	}
	h = a.WaitFor("the next answer", h2test.IsHeaders(3)).(*http2.MetaHeadersFrame)
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
	a := h2test.Dial(t, addr).Read()
	if err := a.Get(1, "/"); err != nil {
		t.Fatal(err)
	}
	h := a.WaitFor("the response head", h2test.IsHeaders(1)).(*http2.MetaHeadersFrame)
	if h.StreamEnded() || h.PseudoValue("status") != "200" {
		t.Fatalf("head: status %s, ended %v", h.PseudoValue("status"), h.StreamEnded())
	}
	st := <-streams
	if n, err := st.Write([]byte("data: hi\n\n")); n != 10 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	d := a.WaitFor("the event", h2test.IsData).(*h2test.Data)
	if string(d.Data) != "data: hi\n\n" {
		t.Fatalf("DATA %q", d.Data)
	}
	a.Fr.WriteRSTStream(1, http2.ErrCodeCancel)
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the reset was not noticed")
	}
	if _, err := st.Write([]byte("x")); !errors.Is(err, h2serve.ErrStreamGone) {
		t.Fatalf("Write after the reset: %v; want ErrStreamGone", err)
	}
}

// TestTakeOverWriteLargerThanBuffer: a Write of more than the out buffer
// holds, to a client that reads and has the window, either takes it all or
// reports the rest pending and then calls writable: a kick that wrote the
// buffer out at once used to leave the stream blocked with nothing to wake
// it.
func TestTakeOverWriteLargerThanBuffer(t *testing.T) {
	streams := make(chan *h2serve.Stream, 1)
	writable := make(chan struct{}, 1)
	addr, _ := serve(t, h2serve.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := w.(h2serve.TakeOver).TakeOver()
		if err != nil {
			t.Error(err)
			return
		}
		st.Watch(func() {
			select {
			case writable <- struct{}{}:
			default:
			}
		}, func() {})
		streams <- st
	})})
	a := h2test.Dial(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}).Read()
	if err := a.Fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
		t.Fatal(err)
	}
	if err := a.Get(1, "/"); err != nil {
		t.Fatal(err)
	}
	st := <-streams
	p := bytes.Repeat([]byte("z"), 1<<20)
	for sent := 0; sent < len(p); {
		n, err := st.Write(p[sent:])
		sent += n
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write after %d bytes: %v", sent, err)
		}
		select {
		case <-writable:
		case <-time.After(10 * time.Second):
			t.Fatalf("after %d of %d bytes the rest was pending and writable never came", sent, len(p))
		}
	}
}

// TestTakeOverForgetsHeaderTable: once a stream is taken over, the server
// asks for a header table of size 0; after the client's acknowledgement a
// request that empties the table first is served, and one that still
// refers to the table's old entries is a COMPRESSION_ERROR (the table is
// gone, not kept for it).
func TestTakeOverForgetsHeaderTable(t *testing.T) {
	addr, _ := serve(t, h2serve.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		st, err := w.(h2serve.TakeOver).TakeOver()
		if err != nil {
			t.Errorf("%s %s: %v", r.Method, r.URL, err)
			return
		}
		st.Watch(func() {}, func() {})
	})})
	isTableSettings := func(f http2.Frame) bool {
		s, ok := f.(*h2test.Settings)
		if !ok || s.Ack {
			return false
		}
		v, ok := s.Values[http2.SettingHeaderTableSize]
		return ok && v == 0
	}
	for _, honoured := range []bool{true, false} {
		t.Run(fmt.Sprintf("honoured=%v", honoured), func(t *testing.T) {
			a := h2test.Dial(t, addr).Read()
			if err := a.Get(1, "/events"); err != nil { // indexes :path and :authority
				t.Fatal(err)
			}
			a.WaitFor("the SETTINGS asking for no header table", isTableSettings)
			if honoured {
				a.LimitHeaderTable(0)
			}
			for range 5 { // the initial SETTINGS, this one, and three unasked for
				if err := a.Fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Get(3, "/events"); err != nil {
				t.Fatal(err)
			}
			if !honoured {
				if code := a.WaitGoAwayOrEnd(); code != int(http2.ErrCodeCompression) {
					t.Fatalf("a block using the forgotten table: GOAWAY code %d; want COMPRESSION_ERROR", code)
				}
				return
			}
			h := a.WaitFor("the second stream's head", h2test.IsHeaders(3)).(*http2.MetaHeadersFrame)
			if h.PseudoValue("status") != "200" {
				t.Fatalf("second stream: status %s", h.PseudoValue("status"))
			}
			if err := a.Get(5, "/other"); err != nil {
				t.Fatal(err)
			}
			a.WaitFor("a third stream's head", h2test.IsHeaders(5))
		})
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
	a := h2test.Dial(t, addr).Read()
	a.Get(1, "/")
	st := <-streams
	s.GoAway()
	a.WaitFor("GOAWAY", func(f http2.Frame) bool {
		g, ok := f.(*http2.GoAwayFrame)
		return ok && g.ErrCode == http2.ErrCodeNo && g.LastStreamID == 1
	})
	st.Close()
	a.WaitFor("the stream's end", func(f http2.Frame) bool {
		d, ok := f.(*h2test.Data)
		return ok && d.End
	})
	poll.Until(t, "the connection closed", 10*time.Second, func() bool {
		select {
		case <-a.Done:
			return true
		default:
			return false
		}
	})
}
