//go:build !linux

package server

import (
	"net"
	"sync/atomic"

	"github.com/ssekit/sse/server/h2serve"
)

// departureWatcher is a no-op where there is no epoll: a departed client
// of a taken-over connection is noticed when a write to it fails, at the
// latest at the second heartbeat (never with heartbeats off).
type departureWatcher struct {
	wakeups atomic.Int64
}

func newDepartureWatcher(func(uint64) *subConn, func(*subConn), func(*subConn)) (*departureWatcher, error) {
	return &departureWatcher{}, nil
}

func (w *departureWatcher) watch(*subConn, net.Conn) {}
func (w *departureWatcher) watchSock(*subConn)       {}
func (w *departureWatcher) wantWrite(*subConn)       {}
func (w *departureWatcher) unwatch(*subConn)         {}
func (w *departureWatcher) close()                   {}

// poller is nil: HTTP/2 connections keep a reader goroutine each.
func (w *departureWatcher) poller() h2serve.Poller { return nil }

type watchState struct{ isBare bool }
