//go:build !linux

package server

import (
	"net"
	"time"
)

// rawSock is Linux only (it relies on the departure watcher's epoll set);
// elsewhere taken-over connections stay net.Conns.
type rawSock struct{ fd int32 }

func takeSocket(net.Conn) (int32, bool) { return 0, false }

func (*rawSock) Write([]byte) (int, error)        { return 0, net.ErrClosed }
func (*rawSock) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (*rawSock) SetWriteDeadline(time.Time) error { return nil }
func (*rawSock) Close() error                     { return nil }

func (c *subConn) bare() bool { return c.isBare }
