//go:build unix

package h2serve_test

import (
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ssekit/sse/server/h2serve"
)

// netpoller is an h2serve.Poller on Go's own netpoller, for this
// package's tests (package server gives its epoll watcher): each arming
// waits in a goroutine until the socket has a byte to peek at or hung up.
type netpoller struct {
	mu    sync.Mutex
	ready map[uint64]func()
	next  uint64
	arms  atomic.Int64
}

func newTestPoller() h2serve.Poller { return &netpoller{ready: make(map[uint64]func())} }

func (p *netpoller) WatchReadable(_ syscall.RawConn, ready func()) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	p.ready[p.next] = ready
	return p.next, nil
}

func (p *netpoller) Rearm(rc syscall.RawConn, id uint64) error {
	p.arms.Add(1)
	go func() {
		_ = rc.Read(func(fd uintptr) bool {
			var b [1]byte
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return err != syscall.EAGAIN
		})
		p.mu.Lock()
		fn := p.ready[id]
		p.mu.Unlock()
		if fn != nil {
			fn()
		}
	}()
	return nil
}

func (p *netpoller) Unwatch(_ syscall.RawConn, id uint64) {
	p.mu.Lock()
	delete(p.ready, id)
	p.mu.Unlock()
}

func pollerArms(p h2serve.Poller) int64 { return p.(*netpoller).arms.Load() }
