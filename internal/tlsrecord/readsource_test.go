package tlsrecord

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
)

// nothingNow is a non-blocking source's "nothing has come".
type nothingNow struct{}

func (nothingNow) Error() string   { return "nothing now" }
func (nothingNow) Timeout() bool   { return true }
func (nothingNow) Temporary() bool { return true }

// dribble gives the socket's bytes one at a time, "nothing now" between
// each: every record arrives in pieces across Reads.
type dribble struct {
	r    io.Reader
	gave bool
}

func (d *dribble) Read(p []byte) (int, error) {
	if d.gave || len(p) == 0 {
		d.gave = false
		return 0, nothingNow{}
	}
	d.gave = true
	return d.r.Read(p[:1])
}

// TestReadSourceResumesPartialRecords: with SetReadSource giving a
// non-blocking reader, a Read that finds nothing returns its timeout and
// keeps the partial header or record for the next Read; the plaintext
// comes out whole and in order. The kept ConnectionState has no
// keying-material exporter, and says so instead of failing.
func TestReadSourceResumesPartialRecords(t *testing.T) {
	s := startServerOnly(t)
	cc, err := tls.Dial("tcp", s.addr, s.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := <-s.got
	lc, ok := c.(*Conn)
	if !ok {
		t.Fatal("TLS 1.3 connection not on the lean record layer")
	}
	defer lc.Close()
	if _, err := lc.State().ExportKeyingMaterial("EXPERIMENTAL test", nil, 16); err == nil {
		t.Error("the kept ConnectionState exports keying material; want it dropped")
	}
	lc.SetReadSource(&dribble{r: lc.NetConn()})
	msg := bytes.Repeat([]byte("0123456789"), 4000) // three records
	go cc.Write(msg)
	_ = lc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 1000)
	for deadline := time.Now().Add(10 * time.Second); len(got) < len(msg) && time.Now().Before(deadline); {
		n, err := lc.Read(buf)
		got = append(got, buf[:n]...)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("Read: %v", err)
		}
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes, want %d and the same", len(got), len(msg))
	}
}

// startServerOnly is startEcho without the echo: the test reads.
func startServerOnly(t *testing.T) *echoServer {
	t.Helper()
	cert := e2etest.NewTestCert(t)
	kp, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config(&tls.Config{Certificates: []tls.Certificate{kp}, NextProtos: []string{"h2"}}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &echoServer{addr: ln.Addr().String(), cert: cert, got: make(chan net.Conn, 1)}
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
		c, _, err := Handshake(raw, cfg, nil)
		if err != nil {
			close(s.got)
			return
		}
		_ = raw.SetDeadline(time.Time{})
		s.got <- c
	}()
	return s
}

// trickle is a non-blocking sink: each Write takes at most room bytes of
// the socket, then says it would block, as a full socket buffer does.
type trickle struct {
	net.Conn
	room int
}

func (t *trickle) Write(p []byte) (int, error) {
	if len(p) <= t.room {
		return t.Conn.Write(p)
	}
	n, err := t.Conn.Write(p[:t.room])
	if err != nil {
		return n, err
	}
	return n, nothingNow{}
}

// TestWriteSinkResumesPartialRecords: on a sink that takes a few bytes
// per Write and then would block, Write reports only whole records
// written, keeps the rest of the one it sealed, and the caller's retries
// with the rest (as the writer pool's are) bring the client every byte in
// order; Close sends the unsent rest before its close_notify.
func TestWriteSinkResumesPartialRecords(t *testing.T) {
	s := startServerOnly(t)
	cc, err := tls.Dial("tcp", s.addr, s.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	lc, ok := (<-s.got).(*Conn)
	if !ok {
		t.Fatal("TLS 1.3 connection not on the lean record layer")
	}
	defer lc.Close()
	sink := &trickle{Conn: lc.NetConn(), room: 1000}
	lc.SetWriteSink(sink)
	var msg []byte
	for i := range 3000 {
		msg = fmt.Appendf(msg, "data: %d\n\n", i)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(cc)
		got <- b
	}()
	pending, timeouts := msg, 0
	for len(pending) > 0 {
		n, err := lc.Write(pending[:min(len(pending), 20000)])
		pending = pending[n:]
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			timeouts++
			if timeouts > 10000 {
				t.Fatal("no progress")
			}
		default:
			t.Fatalf("Write: %v", err)
		}
	}
	if timeouts == 0 {
		t.Fatal("the sink never refused a write")
	}
	// A last short write leaves a tail: Close must send it.
	sink.room = 3
	last := []byte("data: last\n\n")
	if n, err := lc.Write(last); n != 0 || err == nil {
		t.Fatalf("Write into 3 bytes of room = %d, %v; want 0 and would-block", n, err)
	}
	sink.room = 1 << 30
	lc.Close()
	select {
	case b := <-got:
		want := append(bytes.Clone(msg), last...)
		if !bytes.Equal(b, want) {
			t.Fatalf("client read %d bytes, want %d and the same", len(b), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client read nothing to the end")
	}
}

// TestWriteSinkShortWriteWithoutTheRest: a Write after a short one that
// is not given the rest again is refused (it would break the stream).
func TestWriteSinkShortWriteWithoutTheRest(t *testing.T) {
	s := startServerOnly(t)
	cc, err := tls.Dial("tcp", s.addr, s.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	lc := (<-s.got).(*Conn)
	defer lc.Close()
	lc.SetWriteSink(&trickle{Conn: lc.NetConn(), room: 2})
	if n, err := lc.Write([]byte("0123456789")); n != 0 || err == nil {
		t.Fatalf("first Write = %d, %v; want 0 and would-block", n, err)
	}
	if _, err := lc.Write([]byte("x")); err == nil || isTimeout(err) {
		t.Fatalf("Write of less than the rest = %v; want a lasting error", err)
	}
}
