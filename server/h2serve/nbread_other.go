//go:build !unix

package h2serve

import (
	"io"
	"syscall"
)

// newNBReader is nil where sockets are not read with read(2): every
// connection keeps its reader goroutine.
func newNBReader(syscall.RawConn) io.Reader { return nil }
