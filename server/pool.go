package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssekit/sse/internal/tlsrecord"
	"github.com/ssekit/sse/server/h2serve"
)

// errNotHijackable means the connection stays with net/http: nothing was
// written, so the stream can be served from the handler instead.
var errNotHijackable = errors.New("server: connection cannot be taken over")

// netConn is the part of net.Conn the pool uses.
type netConn interface {
	Write(p []byte) (int, error)
	SetWriteDeadline(t time.Time) error
	Close() error
}

// hijack takes the connection over from net/http and writes the response
// head (status line, w's headers) and preamble itself. The body is
// delimited by the connection's close, as HTTP/1.1 allows, so events go out
// without chunk framing.
func hijack(w http.ResponseWriter, preamble []byte, writeTimeout time.Duration) (net.Conn, error) {
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotHijackable, err)
	}
	// The server's read and write deadlines no longer apply; the pool sets
	// its own write deadline on every write. The bufio buffers net/http
	// returned are dropped: an idle subscriber keeps none.
	_ = nc.SetDeadline(time.Time{})
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	w.Header().Write(&head)
	head.WriteString("Connection: close\r\n\r\n")
	head.Write(preamble)
	_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := nc.Write(head.Bytes()); err != nil {
		nc.Close()
		return nil, fmt.Errorf("server: writing response head: %w", err)
	}
	return nc, nil
}

// pooled is what the writer pool keeps for one taken-over connection.
type pooled struct {
	nc      netConn    // the taken-over HTTP/1.1 connection; nil for HTTP/2
	writeMu sync.Mutex // held by the writer draining and writing nc

	// Guarded by writeMu: what a full socket buffer did not take, and how
	// fast the client takes what it is behind on: the time spent with
	// pending bytes since the last verdict (behindFor, plus the current
	// stretch from behindSince) and the bytes it accepted meanwhile.
	pending     []byte
	behindSince time.Duration // monoSince of the stall's start; 0: nothing pending
	behindFor   time.Duration
	behindBytes int64
	retryPause  time.Duration

	queued       atomic.Bool  // in the pool's ready queue
	heartbeatDue atomic.Bool  // idle for a heartbeat period
	lastWrite    atomic.Int64 // unix nanoseconds of the last write

	id         uint64  // the pool's key for it, set by add
	sock       rawSock // nc when it is a plain TCP connection's socket
	watchState         // the departure watcher's registration
}

// writerPool writes to taken-over HTTP/1.1 subscriber connections from a
// fixed set of goroutines. A subscriber with something to send is queued
// once (subConn.queued) however many updates arrive meanwhile, and the
// writer sends everything queued in one write: flush coalescing. A ticker
// marks idle connections for a heartbeat and ends those whose token
// expired. The departure watcher notices clients that hung up (nobody reads
// these connections); where it cannot, a failed write or heartbeat does.
type writerPool struct {
	heartbeat    time.Duration
	writeTimeout time.Duration
	minRate      int64 // bytes per second a client behind must take; 0: any
	end          func(c *subConn, reason string)
	departures   *departureWatcher

	mu     sync.Mutex // guards ready, head, idle and closed
	cond   *sync.Cond
	ready  []*subConn
	head   int
	idle   int // writers waiting on cond and not yet signalled
	closed bool

	connsMu  sync.Mutex          // guards conns, lastID and draining
	conns    map[uint64]*subConn // by pooled.id
	lastID   uint64
	draining bool // shutdown has taken what remains: register refuses

	stopTicker chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

func newWriterPool(writers int, heartbeat, writeTimeout time.Duration, minRate int64, end func(*subConn, string)) (*writerPool, error) {
	p := &writerPool{
		heartbeat:    heartbeat,
		writeTimeout: writeTimeout,
		minRate:      minRate,
		end:          end,
		conns:        make(map[uint64]*subConn),
		stopTicker:   make(chan struct{}),
	}
	departures, err := newDepartureWatcher(p.lookup, func(c *subConn) { end(c, reasonGone) }, p.schedule)
	if err != nil {
		return nil, err
	}
	p.departures = departures
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(writers + 1)
	for range writers {
		go p.writer()
	}
	go p.tick()
	return p, nil
}

// add starts serving c on nc: it is registered for heartbeats and
// departures, and scheduled once for what the hub queued while it was set
// up (the replay).
// A plain TCP connection is kept as its socket's descriptor alone (see
// rawSock), anything else (TLS) as the net.Conn.
func (p *writerPool) add(c *subConn, nc net.Conn) {
	if fd, ok := takeSocket(nc); ok {
		c.sock.fd, c.isBare = fd, true
		if lc, isLean := nc.(*tlsrecord.Conn); isLean {
			// Records sealed here, sent without blocking, read on
			// readiness (departures' readTLS); net's closed TCPConn and
			// the handshake's state are let go.
			lc.Detach(&c.sock, &c.sock)
			if !p.register(c, lc) {
				return
			}
		} else if !p.register(c, &c.sock) {
			return
		}
		p.departures.watchSock(c)
	} else {
		if !p.register(c, nc) {
			return
		}
		p.departures.watch(c, nc)
	}
	c.started.Store(true)
	p.schedule(c)
}

// addStream starts serving c on an HTTP/2 stream taken over from its
// handler (server/h2serve): as add, without the departure watcher (the
// connection's reader notices a reset or a departure at once), and with
// the preamble as the first thing to write.
func (p *writerPool) addStream(c *subConn, st *h2serve.Stream, preamble []byte) {
	c.pending = preamble
	if !p.register(c, st) {
		return
	}
	c.started.Store(true)
	st.Watch(func() { p.schedule(c) }, func() { p.end(c, reasonGone) })
	p.schedule(c)
}

// register gives c its id and its place for the ticker, writing to nc.
// Once shutdown has taken its last look at the pool it refuses c and ends
// it (nothing would write or close it after that): false tells the
// caller c is ended.
func (p *writerPool) register(c *subConn, nc netConn) bool {
	c.nc = nc
	c.lastWrite.Store(time.Now().UnixNano())
	c.pool = p // notify schedules c: no closure per connection
	p.connsMu.Lock()
	if p.draining {
		p.connsMu.Unlock()
		p.end(c, reasonShutdown)
		return false
	}
	p.lastID++
	c.id = p.lastID
	p.conns[c.id] = c
	p.connsMu.Unlock()
	return true
}

// lookup returns the connection with id, nil when it has been removed.
func (p *writerPool) lookup(id uint64) *subConn {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	return p.conns[id]
}

// remove stops serving c; call it before closing its connection.
func (p *writerPool) remove(c *subConn) {
	p.departures.unwatch(c)
	p.connsMu.Lock()
	delete(p.conns, c.id)
	p.connsMu.Unlock()
}

// schedule queues c for a writer unless it is queued already.
func (p *writerPool) schedule(c *subConn) {
	if !c.queued.CompareAndSwap(false, true) {
		return
	}
	p.mu.Lock()
	p.ready = append(p.ready, c)
	// Wake a writer only if one is idle: a fan-out that readies thousands
	// of connections costs at most one wake-up per writer, and busy
	// writers find the rest when they come back for more.
	wake := p.idle > 0
	if wake {
		p.idle--
	}
	p.mu.Unlock()
	if wake {
		p.cond.Signal()
	}
}

func (p *writerPool) next() (*subConn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.head == len(p.ready) {
		if p.closed {
			return nil, false
		}
		p.idle++
		p.cond.Wait()
	}
	c := p.ready[p.head]
	p.ready[p.head] = nil
	p.head++
	if p.head == len(p.ready) {
		p.ready, p.head = p.ready[:0], 0
	}
	return c, true
}

func (p *writerPool) writer() {
	defer p.wg.Done()
	var buf []byte
	for {
		c, ok := p.next()
		if !ok {
			return
		}
		buf = p.serve(c, buf)
	}
}

// Writes to a taken-over connection never hold a writer for long: each
// gets writeSlice to go out. A client whose socket buffer is full keeps the
// rest as pending, retried with growing pauses; meanwhile the hub queues
// its updates, up to the hub's bound. From the moment it falls behind, a
// client must take at least minRate bytes per second, counted over windows
// of writeTimeout, or it is ended as slow: a client that reads a byte now
// and then does not keep its slot (and what is queued for it) forever.
const (
	writeSlice    = 5 * time.Millisecond
	minRetryPause = 20 * time.Millisecond
	maxRetryPause = time.Second
)

// tooSlowLocked records that a write to c accepted n bytes at now and did
// not finish, and reports whether c, once it has been behind for a window
// of writeTimeout, took less than minRate bytes per second over it (or
// nothing at all). Time with nothing pending does not count: a client that
// caught up and then idled is judged on the time it was behind. Called
// with c.writeMu held.
func (p *writerPool) tooSlowLocked(c *subConn, n int, now time.Time) bool {
	if c.behindSince == 0 {
		c.behindSince = monoSince(now)
	}
	c.behindBytes += int64(n)
	behind := c.behindFor + monoSince(now) - c.behindSince
	if behind < p.writeTimeout {
		return false
	}
	if c.behindBytes == 0 || float64(c.behindBytes) < float64(p.minRate)*behind.Seconds() {
		return true
	}
	c.behindSince, c.behindFor, c.behindBytes = monoSince(now), 0, 0 // a new window
	return false
}

// caughtUpLocked records that a write to c accepted its last n bytes: c
// has nothing pending until its next stall. Called with c.writeMu held.
func (c *pooled) caughtUpLocked(n int, now time.Time) {
	c.pending, c.retryPause = nil, 0
	if c.behindSince != 0 {
		c.behindFor += monoSince(now) - c.behindSince
		c.behindBytes += int64(n)
		c.behindSince = 0
	}
}

// monoEpoch anchors monoSince: an offset from it is 8 bytes in every
// pooled connection where a time.Time is 24.
var monoEpoch = time.Now()

// monoSince is t as a monotonic offset from monoEpoch, never 0.
func monoSince(t time.Time) time.Duration { return max(t.Sub(monoEpoch), 0) + 1 }

// serve writes everything queued for c in one write.
func (p *writerPool) serve(c *subConn, buf []byte) []byte {
	// Unqueue before draining: an update arriving during the write
	// schedules c again instead of being missed. The writer that takes it
	// then waits for this one: one writer at a time drains and writes a
	// connection, so updates go out in the order they were drained.
	c.queued.Store(false)
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.ended.Load() {
		return buf
	}
	out, ownBuf := c.pending, false
	var err error
	if len(out) == 0 { // nothing left over: take what the hub queued
		buf, err = c.sub.Drain(buf[:0])
		if c.heartbeatDue.Swap(false) && len(buf) == 0 && err == nil {
			buf = append(buf, ":\n"...)
		}
		out, ownBuf = buf, true
	}
	if len(out) > 0 {
		now := time.Now()
		_ = c.nc.SetWriteDeadline(now.Add(writeSlice))
		n, werr := c.nc.Write(out)
		switch {
		case werr == nil:
			c.caughtUpLocked(n, now)
			c.lastWrite.Store(now.UnixNano())
			if !ownBuf {
				// What was left over (or a stream's preamble) went out:
				// what the hub queued meanwhile is drained next.
				defer p.schedule(c)
			}
		case errors.Is(werr, os.ErrDeadlineExceeded) && err == nil:
			if p.tooSlowLocked(c, n, now) {
				p.end(c, reasonSlow)
				return shrink(buf)
			}
			if ownBuf {
				c.pending = bytes.Clone(out[n:]) // buf is the writer's, reused
			} else {
				c.pending = out[n:]
			}
			c.retryPause = min(max(2*c.retryPause, minRetryPause), maxRetryPause)
			// A rawSock does not wait for its socket buffer to drain: the
			// departure watcher says when it has. The timer stays, for the
			// verdict on a client that takes nothing.
			if c.bare() {
				p.departures.wantWrite(c)
			}
			time.AfterFunc(c.retryPause, func() { p.schedule(c) })
			return shrink(buf)
		default: // gone, or stalled while the hub ended it: it will resume
			p.end(c, reasonGone)
			return shrink(buf)
		}
	}
	if err != nil {
		p.end(c, reasonOf(err))
	}
	return shrink(buf)
}

// tick sends heartbeats to idle connections and ends expired ones.
func (p *writerPool) tick() {
	defer p.wg.Done()
	// At most a second apart so tokens expire on time; a pass over 50,000
	// connections takes about a millisecond.
	period := time.Second
	if p.heartbeat > 0 {
		period = min(period, p.heartbeat/2)
	}
	t := time.NewTicker(max(period, 10*time.Millisecond))
	defer t.Stop()
	var due, expired []*subConn
	for {
		select {
		case <-p.stopTicker:
			return
		case now := <-t.C:
			due, expired = due[:0], expired[:0]
			idleSince := now.Add(-p.heartbeat).UnixNano()
			p.connsMu.Lock()
			for _, c := range p.conns {
				switch {
				case c.expires != 0 && now.UnixNano() > c.expires:
					expired = append(expired, c)
				case p.heartbeat > 0 && c.lastWrite.Load() <= idleSince:
					due = append(due, c)
				}
			}
			p.connsMu.Unlock()
			for _, c := range expired {
				p.end(c, reasonAuth)
			}
			for _, c := range due {
				c.heartbeatDue.Store(true)
				p.schedule(c)
			}
		}
	}
}

// shutdown waits until every connection has ended (the hub's shutdown ends
// each subscriber, whose writer then closes it) or ctx is done, then
// closes what remains and stops the goroutines.
func (p *writerPool) shutdown(ctx context.Context) error {
	var err error
	for {
		p.connsMu.Lock()
		n := len(p.conns)
		p.connsMu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	p.connsMu.Lock()
	p.draining = true
	rest := make([]*subConn, 0, len(p.conns))
	for _, c := range p.conns {
		rest = append(rest, c)
	}
	p.connsMu.Unlock()
	for _, c := range rest {
		p.end(c, reasonShutdown)
	}
	p.stopOnce.Do(func() {
		close(p.stopTicker)
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cond.Broadcast()
	})
	p.wg.Wait()
	p.departures.close()
	return err
}
