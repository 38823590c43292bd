//go:build linux

package server

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ssekit/sse/internal/tlsrecord"
	"github.com/ssekit/sse/server/h2serve"
)

// departureWatcher notices, within moments, that the client of a
// taken-over connection has gone: nobody reads these connections, so
// without it a departure shows only when a write fails, a heartbeat or two
// later (never with heartbeats off). One goroutine blocked in epoll_wait
// watches every socket; a connection costs an entry in the kernel's epoll
// set (its data is the pool's id for the connection), not a goroutine.
//
// The sockets stay in Go's own netpoller too (a second epoll set watching
// the same file is independent of the first). Only hang-ups are asked for
// (EPOLLRDHUP: the client closed or shut down its side; EPOLLHUP and
// EPOLLERR always): not EPOLLIN, so bytes a client sends after its request
// (it should send none) wake nothing; they stay in the kernel's bounded
// receive buffer until the connection ends.
type departureWatcher struct {
	epfd     int
	wakeR    int // read end of the pipe that wakes the poller to stop
	wakeW    int
	lookup   func(id uint64) *subConn // nil once removed from the pool
	gone     func(c *subConn)         // ends c, unwatching and closing it
	writable func(c *subConn)         // c's socket (a rawSock) takes writes again

	wakeups atomic.Int64 // epoll_wait returns, for tests: no spinning
	stopped chan struct{}
	once    sync.Once

	// Sockets watched for readability (server/h2serve's connections,
	// through h2serve.Poller): their epoll data is readyBit|id.
	readyMu   sync.Mutex
	ready     map[uint64]func()
	readyNext uint64
	work      chan func() // the workers' queue; full: a goroutine of its own
	workOnce  sync.Once
}

// stopID is the epoll data of the wake-up pipe; pool ids start at 1.
const stopID = 0

const watchEvents = syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR

func newDepartureWatcher(lookup func(uint64) *subConn, gone, writable func(*subConn)) (*departureWatcher, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("server: epoll_create1: %w", err)
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("server: pipe2: %w", err)
	}
	w := &departureWatcher{epfd: epfd, wakeR: p[0], wakeW: p[1], lookup: lookup, gone: gone,
		writable: writable, stopped: make(chan struct{})}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	setEventID(&ev, stopID)
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		w.closeFDs()
		return nil, fmt.Errorf("server: epoll_ctl: %w", err)
	}
	go w.run()
	return w, nil
}

// The 64 bits of epoll_event's data are Fd and Pad in package syscall.
func setEventID(ev *syscall.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func eventID(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// readyBit marks the epoll data of a socket watched for readability
// rather than a pool id.
const readyBit = 1 << 63

// readyEvents: one wake-up per arming (EPOLLONESHOT), for bytes or a
// hang-up; the worker reads what came, then rearms.
const readyEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// readyWorkers run the ready functions; more at once get goroutines of
// their own.
const readyWorkers = 4

// poller is the watcher as an h2serve.Poller: HTTP/2 connections share
// the departure watcher's epoll set and goroutine, so an idle one needs
// no goroutine blocked in Read.
func (w *departureWatcher) poller() h2serve.Poller { return w }

// WatchReadable adds rc to the epoll set, not armed: after each Rearm,
// ready runs once on a worker for bytes or a hang-up.
func (w *departureWatcher) WatchReadable(rc syscall.RawConn, ready func()) (uint64, error) {
	select {
	case <-w.stopped:
		return 0, net.ErrClosed
	default:
	}
	w.workOnce.Do(func() {
		w.work = make(chan func(), 256)
		for range readyWorkers {
			go func() {
				for fn := range w.work {
					fn()
				}
			}()
		}
	})
	w.readyMu.Lock()
	if w.ready == nil {
		w.ready = make(map[uint64]func())
	}
	w.readyNext++
	id := w.readyNext
	w.ready[id] = ready
	w.readyMu.Unlock()
	if err := w.ctlReady(rc, syscall.EPOLL_CTL_ADD, id, syscall.EPOLLONESHOT); err != nil {
		w.Unwatch(rc, id)
		return 0, err
	}
	return id, nil
}

// Rearm arms rc (watched as id) for its next wake-up.
func (w *departureWatcher) Rearm(rc syscall.RawConn, id uint64) error {
	return w.ctlReady(rc, syscall.EPOLL_CTL_MOD, id, readyEvents)
}

// Unwatch stops watching rc (closing the socket does too); a wake-up
// already under way finds nothing.
func (w *departureWatcher) Unwatch(rc syscall.RawConn, id uint64) {
	w.readyMu.Lock()
	delete(w.ready, id)
	w.readyMu.Unlock()
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}

func (w *departureWatcher) ctlReady(rc syscall.RawConn, op int, id uint64, events uint32) error {
	select {
	case <-w.stopped:
		return net.ErrClosed
	default:
	}
	var ctlErr error
	err := rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: events}
		setEventID(&ev, readyBit|id)
		ctlErr = syscall.EpollCtl(w.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return err
	}
	return ctlErr
}

// dispatchReady runs the ready function of id on a worker.
func (w *departureWatcher) dispatchReady(id uint64) {
	w.readyMu.Lock()
	fn := w.ready[id]
	w.readyMu.Unlock()
	if fn == nil {
		return
	}
	select {
	case w.work <- fn:
	default:
		go fn()
	}
}

// watch starts watching c's connection nc (or, for TLS, the socket under
// it); c.id must be set and c findable by lookup. A connection that cannot
// be watched (not a socket of this process) is only noticed by writes.
func (w *departureWatcher) watch(c *subConn, nc net.Conn) {
	rc := syscallConn(nc)
	if rc == nil {
		return
	}
	var ctlErr error
	err := rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: watchEvents}
		setEventID(&ev, c.id)
		ctlErr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil && ctlErr == nil {
		c.watched.Store(true)
	}
}

// syscallConn is the socket beneath nc (TLS: the TCP connection under
// it), nil when nc is not a socket of this process.
func syscallConn(nc net.Conn) syscall.RawConn {
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn() // TLS: the hang-up shows on the TCP socket beneath
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// watchSock starts watching c's rawSock, as watch does a net.Conn.
func (w *departureWatcher) watchSock(c *subConn) {
	err := c.sock.do(func(fd int) error {
		ev := syscall.EpollEvent{Events: sockEvents(c)}
		setEventID(&ev, c.id)
		return syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
	})
	if err == nil {
		c.watched.Store(true)
	}
}

// wantWrite asks for writable(c) once c's rawSock can take more: its
// socket buffer was full. EPOLLOUT is level-triggered, so a buffer that
// drained before this call reports at once; the event handler asks for
// hang-ups only again before calling writable, so it reports once.
func (w *departureWatcher) wantWrite(c *subConn) {
	if !c.watched.Load() {
		return
	}
	_ = c.sock.do(func(fd int) error {
		ev := syscall.EpollEvent{Events: sockEvents(c) | syscall.EPOLLOUT}
		setEventID(&ev, c.id)
		return syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
	})
}

// unwatch stops watching c; call it before closing the connection.
func (w *departureWatcher) unwatch(c *subConn) {
	if !c.watched.Swap(false) {
		return
	}
	if c.bare() {
		_ = c.sock.do(func(fd int) error {
			return syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
		})
		return
	}
	// Found again rather than kept: 16 bytes less in every connection.
	if nc, ok := c.nc.(net.Conn); ok {
		if rc := syscallConn(nc); rc != nil {
			_ = rc.Control(func(fd uintptr) {
				_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
			})
		}
	}
}

func (w *departureWatcher) run() {
	defer close(w.stopped)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return // the epoll file is unusable: writes still notice departures
		}
		w.wakeups.Add(1)
		for i := range events[:n] {
			id := eventID(&events[i])
			if id == stopID {
				return
			}
			if id&readyBit != 0 {
				w.dispatchReady(id &^ readyBit)
				continue
			}
			c := w.lookup(id)
			switch {
			case c == nil:
			case events[i].Events&watchEvents != 0:
				w.gone(c) // unwatches and closes: the event is not seen again
			case events[i].Events&syscall.EPOLLIN != 0 && leanTLS(c) != nil:
				if !c.reading.Swap(true) {
					w.rearm(c) // without EPOLLIN until read
					go w.readTLS(c)
				}
			case events[i].Events&syscall.EPOLLOUT != 0:
				_ = c.sock.do(func(fd int) error {
					ev := syscall.EpollEvent{Events: sockEvents(c)}
					setEventID(&ev, c.id)
					return syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
				})
				w.writable(c)
			}
		}
	}
}

// close stops the poller goroutine and releases its files.
func (w *departureWatcher) close() {
	w.once.Do(func() {
		syscall.Write(w.wakeW, []byte{0})
		<-w.stopped
		w.closeFDs()
		w.workOnce.Do(func() {}) // after WatchReadable's, if any
		if w.work != nil {
			close(w.work) // run has stopped: nothing sends any more
		}
	})
}

func (w *departureWatcher) closeFDs() {
	syscall.Close(w.epfd)
	syscall.Close(w.wakeR)
	syscall.Close(w.wakeW)
}

// watchState is what the watcher keeps in a pooled connection.
type watchState struct {
	watched atomic.Bool // in the epoll set
	reading atomic.Bool // a bare TLS socket's bytes being read (readTLS)
	isBare  bool        // written through rawSock: set before c is shared
}

// leanTLS is c's record layer when c is a bare TLS socket, else nil.
func leanTLS(c *subConn) *tlsrecord.Conn {
	if !c.bare() {
		return nil
	}
	lc, _ := c.nc.(*tlsrecord.Conn)
	return lc
}

// sockEvents is what a bare socket is watched for: departures, and for
// TLS what the client sends (KeyUpdate, close_notify, an alert) unless it
// is being read.
func sockEvents(c *subConn) uint32 {
	if leanTLS(c) != nil && !c.reading.Load() {
		return watchEvents | syscall.EPOLLIN
	}
	return watchEvents
}

// rearm sets c's events to sockEvents.
func (w *departureWatcher) rearm(c *subConn) {
	_ = c.sock.do(func(fd int) error {
		ev := syscall.EpollEvent{Events: sockEvents(c)}
		setEventID(&ev, c.id)
		return syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
	})
}

// readTLS reads what the client of a bare TLS subscriber sent, through
// its record layer: a KeyUpdate is handled there (answered when asked
// for); close_notify, an alert, a bad record or any application data (a
// subscriber has nothing more to say) is its departure.
func (w *departureWatcher) readTLS(c *subConn) {
	lc := leanTLS(c)
	var buf [64]byte
	for {
		n, err := lc.Read(buf[:])
		if n == 0 && isTimeout(err) {
			c.reading.Store(false)
			w.rearm(c)
			return
		}
		if n > 0 || err != nil {
			w.gone(c)
			return
		}
	}
}
