//go:build unix

package h2serve

import (
	"errors"
	"net"
	"testing"
)

// A lean connection's socket reads and writes, once per kick or
// readiness, allocate nothing.
func TestSocketIOAllocatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}

	msg := []byte("0123456789abcdef")
	if n, err := rcWrite(rc, msg); n != len(msg) || err != nil {
		t.Fatalf("rcWrite = %d, %v; want %d, nil", n, err, len(msg))
	}
	got := make([]byte, len(msg))
	if _, err := peer.Read(got); err != nil || string(got) != string(msg) {
		t.Fatalf("the peer read %q, %v; want %q", got, err, msg)
	}
	if _, err := peer.Write(msg); err != nil {
		t.Fatal(err)
	}
	r := newNBReader(rc)
	buf := make([]byte, 64)
	var n int
	for n == 0 { // the peer's bytes may not have crossed yet
		if n, err = r.Read(buf); err != nil && !errors.Is(err, errWouldBlock) {
			t.Fatalf("Read: %v", err)
		}
	}
	if string(buf[:n]) != string(msg) {
		t.Fatalf("Read %q; want %q", buf[:n], msg)
	}
	if _, err := r.Read(buf); !errors.Is(err, errWouldBlock) {
		t.Fatalf("Read with nothing sent: %v; want errWouldBlock", err)
	}

	if raceEnabled {
		t.Log("allocations not counted under the race detector (it drops pooled objects)")
		return
	}
	if a := testing.AllocsPerRun(100, func() { rcWrite(rc, msg[:1]) }); a != 0 {
		t.Errorf("rcWrite: %v allocations per call; want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { r.Read(buf) }); a != 0 {
		t.Errorf("nbReader.Read: %v allocations per call; want 0", a)
	}
}
