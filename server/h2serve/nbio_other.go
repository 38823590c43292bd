//go:build !unix

package h2serve

import (
	"io"
	"syscall"
)

// newNBReader is nil where sockets are not read with read(2): every
// connection keeps its reader goroutine.
func newNBReader(syscall.RawConn) io.Reader { return nil }

// nbWrite is never called where newNBReader is nil (no connection is
// polled, so none has a socket to write to).
func nbWrite(int, []byte) (int, error) { return 0, errWouldBlock }

func socketFD(syscall.RawConn) (int, bool) { return -1, false }

// rcWrite is never called either: takeWrites gives no sink where
// newNBReader is nil.
func rcWrite(syscall.RawConn, []byte) (int, error) { return 0, errWouldBlock }
