//go:build unix

package sockwrite

import (
	"bytes"
	"syscall"
	"testing"
)

// socketPair is a connected pair of non-blocking stream sockets.
func socketPair(t *testing.T) (w, r int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}

// TestWriteStopsWhenFull: Write takes what fits, says EAGAIN for the rest
// without waiting, and what it reports written is what the peer reads.
func TestWriteStopsWhenFull(t *testing.T) {
	w, r := socketPair(t)
	p := bytes.Repeat([]byte("0123456789abcdef"), 1<<20/16*8) // 8 MiB: more than any socket buffer
	n, errno := Write(uintptr(w), p)
	if errno != syscall.EAGAIN || n <= 0 || n >= len(p) {
		t.Fatalf("Write of %d bytes = %d, %v; want part of it and EAGAIN", len(p), n, errno)
	}
	got := make([]byte, 0, n)
	buf := make([]byte, 64<<10)
	for len(got) < n {
		m, err := syscall.Read(r, buf)
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(got), n, err)
		}
		got = append(got, buf[:m]...)
	}
	if !bytes.Equal(got, p[:n]) {
		t.Fatal("the peer read other bytes than the ones Write reported")
	}
	if n, errno := Write(uintptr(w), nil); n != 0 || errno != 0 {
		t.Fatalf("Write(nil) = %d, %v; want 0, 0", n, errno)
	}
}

// TestWriteToAGonePeer: a peer that reads no more makes Write fail with
// EPIPE (no signal: the test process lives on).
func TestWriteToAGonePeer(t *testing.T) {
	w, r := socketPair(t)
	if err := syscall.Shutdown(r, syscall.SHUT_RDWR); err != nil {
		t.Fatal(err)
	}
	if n, errno := Write(uintptr(w), []byte("x")); errno != syscall.EPIPE || n != 0 {
		t.Fatalf("Write to a closed peer = %d, %v; want 0, EPIPE", n, errno)
	}
}
