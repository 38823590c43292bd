// Package tlsrecord carries the TLS 1.3 record layer (RFC 8446 §5, with
// the key update of §4.6.3 and §7.2, the alerts of §6) of server
// connections after crypto/tls has done their handshake, so that an idle
// connection holds only its traffic secrets, keys, IVs and sequence
// numbers: no record buffer, no cipher object.
//
// crypto/tls keeps doing everything else: the handshake, certificates,
// ALPN, session resumption (tickets), TLS 1.2 (which stays on crypto/tls
// entirely). Handshake runs it; the secrets come from a per-connection
// KeyLogWriter (Config), and a wrapper around the socket keeps crypto/tls
// from reading past the client's Finished, so the client's first
// application record is the record layer's, at sequence number 0 (it must
// authenticate there, or the connection ends with bad_record_mac).
//
// Reading waits for a record header in 5 bytes of the connection itself;
// only when one has come does it take a buffer from a pool shared by all
// connections, read ahead into it, and decrypt in place; the buffer goes
// back when its plaintext has been read and no partial record is left in
// it. The AEAD is built when such a burst starts and dropped when it
// ends; a Write builds its own, seals into a pooled buffer, writes and
// returns both.
//
// What it deliberately does not do: TLS 1.2 or the client side, 0-RTT
// early data (crypto/tls's server does not accept it), post-handshake
// client authentication, handshake messages fragmented across records
// (only KeyUpdate is expected after the handshake, and it is one 5-byte
// message), record padding of its own, resuming a Write after an error
// (a failed or timed-out write leaves the connection unusable, as with
// crypto/tls).
//
// Hostile peers: a record larger than the protocol allows ends the
// connection with record_overflow, a bad tag with bad_record_mac, a
// record that is not application_data on the wire, or an inner type that
// is not expected, with unexpected_message; more than maxUseless records
// in a row that carry no application data (empty records, KeyUpdates)
// end it too, and KeyUpdates are rationed by a token bucket.
package tlsrecord

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Record and alert constants (RFC 8446 §5.1, §6).
const (
	recordAlert           = 21
	recordHandshake       = 22
	recordApplicationData = 23

	maxPlaintext  = 1 << 14
	maxCiphertext = maxPlaintext + 256
	headerLen     = 5
	tagLen        = 16

	alertCloseNotify       = 0
	alertUnexpectedMessage = 10
	alertBadRecordMAC      = 20
	alertRecordOverflow    = 22
	alertDecodeError       = 50
	alertIllegalParameter  = 47
	alertUserCanceled      = 90

	handshakeKeyUpdate = 24
)

// Limits.
const (
	// maxUseless is how many records in a row may carry no application
	// data (crypto/tls allows as many).
	maxUseless = 16
	// keyUpdateBurst KeyUpdates from the client are taken at once, then
	// one per keyUpdateEvery.
	keyUpdateBurst = 8
	keyUpdateEvery = time.Second
	// keyUpdateWriteTimeout bounds the write of the KeyUpdate a client
	// requested.
	keyUpdateWriteTimeout = 10 * time.Second
	// updateAfter is how many records the hub seals under one key before
	// updating it: well below AES-GCM's 2^24.5 full-size records (RFC 8446
	// §5.5).
	updateAfter = 1 << 23
	// writeBatch is how much ciphertext a Write seals before writing it:
	// one full record. Events are small; the pool's buffers stay small.
	writeBatch = maxPlaintext + headerLen + 1 + tagLen
)

// suite is a TLS 1.3 cipher suite.
type suite struct {
	id      uint16
	keyLen  int
	hashLen int
	hash    func() hash.Hash
	aead    func(key []byte) cipher.AEAD
}

func aesGCM(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

func chacha(key []byte) cipher.AEAD {
	a, err := chacha20poly1305.New(key)
	if err != nil {
		panic(err)
	}
	return a
}

var suites = []suite{
	{tls.TLS_AES_128_GCM_SHA256, 16, 32, sha256.New, aesGCM},
	{tls.TLS_AES_256_GCM_SHA384, 32, 48, sha512.New384, aesGCM},
	{tls.TLS_CHACHA20_POLY1305_SHA256, 32, 32, sha256.New, chacha},
}

func suiteByID(id uint16) (*suite, bool) {
	for i := range suites {
		if suites[i].id == id {
			return &suites[i], true
		}
	}
	return nil, false
}

// expandLabel is HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
func expandLabel(s *suite, secret []byte, label string, n int) []byte {
	info := make([]byte, 0, 4+6+len(label))
	info = append(info, byte(n>>8), byte(n), byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	out, err := hkdf.Expand(s.hash, secret, string(info), n)
	if err != nil {
		panic(err)
	}
	return out
}

// half is one direction's keys: what an idle connection keeps.
type half struct {
	secret [48]byte
	key    [32]byte
	iv     [12]byte
	seq    uint64
}

func (h *half) set(s *suite, secret []byte) {
	copy(h.secret[:], secret)
	copy(h.key[:], expandLabel(s, secret, "key", s.keyLen))
	copy(h.iv[:], expandLabel(s, secret, "iv", 12))
	h.seq = 0
}

// update moves to the next traffic secret (RFC 8446 §7.2).
func (h *half) update(s *suite) {
	h.set(s, expandLabel(s, h.secret[:s.hashLen], "traffic upd", s.hashLen))
}

func (h *half) aead(s *suite) cipher.AEAD { return s.aead(h.key[:s.keyLen]) }

// nonce is the per-record nonce (RFC 8446 §5.3).
func (h *half) nonce() []byte {
	n := h.iv
	for i := range 8 {
		n[4+i] ^= byte(h.seq >> (56 - 8*i))
	}
	return n[:]
}

// Errors Read returns after the connection ended for a reason of the peer's.
var (
	ErrAlert  = errors.New("tlsrecord: alert")
	errClosed = errors.New("tlsrecord: use of closed connection")
)

// alertError is a fatal alert, sent or received.
type alertError struct {
	desc uint8
	sent bool
	why  string
}

func (e *alertError) Error() string {
	if e.sent {
		return fmt.Sprintf("tlsrecord: %s (alert %d sent)", e.why, e.desc)
	}
	return fmt.Sprintf("tlsrecord: peer sent alert %d", e.desc)
}

func (e *alertError) Unwrap() error { return ErrAlert }

// Buffers shared by all connections.
var (
	readBufs  = sync.Pool{New: func() any { b := make([]byte, headerLen+maxCiphertext); return &b }}
	writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, writeBatch); return &b }}
)

// Conn is a server TLS 1.3 connection whose record layer is this
// package's. Read and Write may run at once; Close may run with either.
type Conn struct {
	raw   net.Conn
	suite *suite
	state *tls.ConnectionState

	rmu      sync.Mutex // the reader's
	src      io.Reader  // what records are read from: raw, or SetReadSource's
	in       half
	hdr      [headerLen]byte // a header being read while no buffer is held
	hdrN     uint8
	buf      *[]byte // pooled; held while plain or a partial record is in it
	start    int     // raw bytes not yet processed: buf[start:end]
	end      int
	plain    []byte // decrypted, not yet read
	rAEAD    cipher.AEAD
	useless  int
	updates  float64 // key update tokens
	lastUpd  time.Time
	rerr     error
	peerDone bool // close_notify received

	wmu  sync.Mutex // the writer's
	out  half
	werr error
	// tail is the unsent rest of what a would-block Write sealed (a
	// KeyUpdate and one data record at most), tailPlain the bytes of
	// plaintext its data record holds, not yet reported written: the
	// next Write sends the tail first and counts as written the first
	// tailPlain bytes it is given (the caller gives the same bytes again,
	// as after any short write).
	tail      []byte
	tailPlain int
	dst       Sink // where records are written: raw, or SetWriteSink's

	closed atomic.Bool
}

func newConn(raw net.Conn, s *suite, clientSecret, serverSecret []byte) *Conn {
	c := &Conn{raw: raw, suite: s, updates: keyUpdateBurst}
	c.in.set(s, clientSecret)
	c.out.set(s, serverSecret)
	return c
}

// ConnectionState is the handshake's.
func (c *Conn) ConnectionState() tls.ConnectionState {
	if c.state == nil { // Detach
		return tls.ConnectionState{}
	}
	return *c.state
}

// State is the handshake's, shared: not to be modified.
func (c *Conn) State() *tls.ConnectionState { return c.state }

// NetConn returns the socket beneath.
func (c *Conn) NetConn() net.Conn { return c.raw }

// SetReadSource makes Read take the connection's bytes from r instead of
// the socket: a caller driven by the socket's readiness gives a
// non-blocking reader whose "nothing now" is a net.Error with Timeout
// true. Such an error leaves a partial record (or header) where it is,
// and the next Read goes on with it; Read returns it once the plaintext
// read ahead is gone, so a caller that reads until it sees it leaves
// nothing behind.
func (c *Conn) SetReadSource(r io.Reader) {
	c.rmu.Lock()
	c.src = r
	c.rmu.Unlock()
}

// Sink is what SetWriteSink takes: a socket written without net.Conn.
type Sink interface {
	io.Writer
	SetWriteDeadline(time.Time) error
	Close() error
}

// SetWriteSink makes Write, the alerts and Close go to w instead of the
// socket net gave (a caller that took the socket's descriptor out of
// net's hands, for one). A w whose Write would block returns what it
// took and a net.Error with Timeout true; Write keeps the rest (see
// Write). Called before any Write that may run at once.
func (c *Conn) SetWriteSink(w Sink) {
	c.wmu.Lock()
	c.dst = w
	c.wmu.Unlock()
}

// Detach leaves the connection with its keys alone: records go to w and
// come from r (see SetWriteSink and SetReadSource), and the net.Conn and
// the handshake's ConnectionState are forgotten (their memory freed;
// ConnectionState is then empty, the addresses unknown and the read
// deadlines no-ops), for a caller that took the socket out of net's
// hands and needs nothing more of either. Called before any other use
// that may run at once.
func (c *Conn) Detach(w Sink, r io.Reader) {
	c.rmu.Lock()
	c.wmu.Lock()
	c.dst, c.src, c.raw, c.state = w, r, nil, nil
	c.wmu.Unlock()
	c.rmu.Unlock()
}

func (c *Conn) sink() Sink {
	if c.dst != nil {
		return c.dst
	}
	return c.raw
}

func (c *Conn) reader() io.Reader {
	if c.src != nil {
		return c.src
	}
	return c.raw
}

// Read reads application data.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.readRecord(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.maybeRelease()
				return 0, err // a deadline: the next Read goes on
			}
			c.rerr = err
			c.release()
			return 0, err
		}
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	c.maybeRelease()
	return n, nil
}

// maybeRelease gives back the buffer once nothing but a few header bytes
// is left in it.
func (c *Conn) maybeRelease() {
	if c.buf == nil || len(c.plain) > 0 || c.end-c.start >= headerLen {
		return
	}
	c.hdrN = uint8(copy(c.hdr[:], (*c.buf)[c.start:c.end]))
	c.release()
}

func (c *Conn) release() {
	if c.buf != nil {
		readBufs.Put(c.buf)
		c.buf, c.start, c.end, c.plain = nil, 0, 0, nil
	}
	c.rAEAD = nil
}

// readRecord reads, decrypts and handles one record.
func (c *Conn) readRecord() error {
	if c.buf == nil {
		// Idle: wait for a header in the connection's own 5 bytes.
		for c.hdrN < headerLen {
			n, err := c.reader().Read(c.hdr[c.hdrN:])
			c.hdrN += uint8(n)
			if err != nil {
				if err == io.EOF && c.hdrN == 0 {
					return io.EOF // at a record boundary, as crypto/tls says
				}
				if err == io.EOF {
					return io.ErrUnexpectedEOF
				}
				return err
			}
		}
		c.buf = readBufs.Get().(*[]byte)
		c.start, c.end = 0, copy(*c.buf, c.hdr[:])
		c.hdrN = 0
	}
	b := *c.buf
	for c.end-c.start < headerLen {
		if err := c.fill(headerLen); err != nil {
			return err
		}
	}
	h := b[c.start : c.start+headerLen]
	n := int(h[3])<<8 | int(h[4])
	if h[0] != recordApplicationData {
		return c.fail(alertUnexpectedMessage, "record type after the handshake")
	}
	if n > maxCiphertext {
		return c.fail(alertRecordOverflow, "record too large")
	}
	if n < tagLen+1 {
		return c.fail(alertBadRecordMAC, "record too short")
	}
	for c.end-c.start < headerLen+n {
		if err := c.fill(headerLen + n); err != nil {
			return err
		}
	}
	h = b[c.start : c.start+headerLen]
	ct := b[c.start+headerLen : c.start+headerLen+n]
	c.start += headerLen + n
	if c.rAEAD == nil {
		c.rAEAD = c.in.aead(c.suite)
	}
	pt, err := c.rAEAD.Open(ct[:0], c.in.nonce(), ct, h)
	if err != nil {
		return c.fail(alertBadRecordMAC, "record does not authenticate")
	}
	c.in.seq++
	// The content type is the last byte that is not zero (§5.4).
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 {
		return c.fail(alertUnexpectedMessage, "record without a content type")
	}
	if i > maxPlaintext {
		return c.fail(alertRecordOverflow, "plaintext too large")
	}
	typ, pt := pt[i], pt[:i]
	switch typ {
	case recordApplicationData:
		if len(pt) == 0 {
			return c.useless1()
		}
		c.useless = 0
		c.plain = pt
		return nil
	case recordAlert:
		if len(pt) != 2 {
			return c.fail(alertDecodeError, "alert of the wrong length")
		}
		switch pt[1] {
		case alertCloseNotify:
			c.peerDone = true
			return io.EOF
		case alertUserCanceled:
			return c.useless1()
		}
		return &alertError{desc: pt[1]}
	case recordHandshake:
		return c.handshakeMessage(pt)
	}
	return c.fail(alertUnexpectedMessage, "content type after the handshake")
}

func (c *Conn) useless1() error {
	c.useless++
	if c.useless > maxUseless {
		return c.fail(alertUnexpectedMessage, "too many records without application data")
	}
	return nil
}

// fill reads more raw bytes until at least want are buffered from start.
func (c *Conn) fill(want int) error {
	b := *c.buf
	if c.start+want > len(b) {
		c.end = copy(b, b[c.start:c.end])
		c.start = 0
	}
	n, err := c.reader().Read(b[c.end:])
	c.end += n
	if err == io.EOF {
		return io.ErrUnexpectedEOF // inside a record, or without close_notify
	}
	return err
}

// handshakeMessage handles a post-handshake message: only KeyUpdate.
func (c *Conn) handshakeMessage(m []byte) error {
	if len(m) < 4 || m[0] != handshakeKeyUpdate {
		return c.fail(alertUnexpectedMessage, "handshake message after the handshake")
	}
	if n := int(m[1])<<16 | int(m[2])<<8 | int(m[3]); n != 1 || len(m) != 5 {
		return c.fail(alertDecodeError, "KeyUpdate of the wrong length")
	}
	if m[4] > 1 {
		return c.fail(alertIllegalParameter, "KeyUpdate request neither 0 nor 1")
	}
	now := time.Now()
	if !c.lastUpd.IsZero() {
		c.updates = min(keyUpdateBurst, c.updates+now.Sub(c.lastUpd).Seconds()/keyUpdateEvery.Seconds())
	}
	c.lastUpd = now
	if c.updates < 1 {
		return c.fail(alertUnexpectedMessage, "KeyUpdate flood")
	}
	c.updates--
	// Records already read ahead are still encrypted in the buffer:
	// they are opened under the new key.
	c.in.update(c.suite)
	c.rAEAD = nil
	if m[4] == 1 {
		c.wmu.Lock()
		err := c.keyUpdateLocked()
		c.wmu.Unlock()
		if err != nil {
			return err
		}
	}
	return c.useless1()
}

// keyUpdateLocked sends a KeyUpdate (update_not_requested) and moves the
// write side to the next key. Called with wmu held.
func (c *Conn) keyUpdateLocked() error {
	if c.werr != nil {
		return c.werr
	}
	bp := writeBufs.Get().(*[]byte)
	defer writeBufs.Put(bp)
	a := c.out.aead(c.suite)
	b := c.seal((*bp)[:0], a, recordHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, 0})
	c.out.update(c.suite)
	// The reader writes this: a client that does not read must not hold
	// it. The next Write sets its own deadline.
	if len(c.tail) > 0 {
		// A record is half sent: the KeyUpdate can only follow the rest.
		_ = c.sink().SetWriteDeadline(time.Now().Add(keyUpdateWriteTimeout))
		if _, err := c.sink().Write(c.tail); err != nil {
			c.werr, c.tail = err, nil
			return err
		}
		c.tail = nil
	}
	_ = c.sink().SetWriteDeadline(time.Now().Add(keyUpdateWriteTimeout))
	if _, err := c.sink().Write(b); err != nil {
		c.werr = err
		return err
	}
	return nil
}

// fail sends a fatal alert and returns the error Read reports.
func (c *Conn) fail(desc uint8, why string) error {
	c.wmu.Lock()
	c.alertLocked(desc)
	c.wmu.Unlock()
	return &alertError{desc: desc, sent: true, why: why}
}

// alertLocked sends a fatal alert (a close_notify is a warning), after
// which nothing more is written. Called with wmu held.
func (c *Conn) alertLocked(desc uint8) {
	if c.werr != nil {
		return
	}
	if len(c.tail) > 0 {
		// A record is half sent: the alert can only follow the rest.
		_ = c.sink().SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.sink().Write(c.tail); err != nil {
			c.werr, c.tail = errClosed, nil
			return
		}
		c.tail = nil
	}
	level := byte(2)
	if desc == alertCloseNotify {
		level = 1
	}
	bp := writeBufs.Get().(*[]byte)
	b := c.seal((*bp)[:0], c.out.aead(c.suite), recordAlert, []byte{level, desc})
	_ = c.sink().SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.sink().Write(b)
	writeBufs.Put(bp)
	c.werr = errClosed
}

// seal appends one record of content type typ holding p (at most
// maxPlaintext bytes) to b.
func (c *Conn) seal(b []byte, a cipher.AEAD, typ byte, p []byte) []byte {
	n := len(p) + 1 + tagLen
	off := len(b)
	b = append(b, recordApplicationData, 3, 3, byte(n>>8), byte(n))
	b = append(b, p...)
	b = append(b, typ)
	b = a.Seal(b[:off+headerLen], c.out.nonce(), b[off+headerLen:], b[off:off+headerLen])
	c.out.seq++
	return b
}

// Write writes p as application data records. A write the socket
// refuses with a timeout (a deadline, or a non-blocking socket's "would
// block") returns the plaintext written in whole records and that error;
// what was sealed and not sent is kept, and the next Write, which must be
// given the rest of p again, sends it first. Any other error ends writing.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.closed.Load() {
		return 0, errClosed
	}
	written := 0
	if len(c.tail) > 0 || c.tailPlain > 0 {
		if len(p) < c.tailPlain {
			c.werr = errors.New("tlsrecord: Write after a short write not given the rest")
			return 0, c.werr
		}
		// (A KeyUpdate or an alert may have sent the tail already.)
		if m, err := c.sink().Write(c.tail); err != nil {
			c.tail = c.tail[m:]
			return 0, c.writeErrLocked(err)
		}
		written, p = c.tailPlain, p[c.tailPlain:]
		c.tail, c.tailPlain = nil, 0
		if len(p) == 0 {
			return written, nil
		}
	}
	bp := writeBufs.Get().(*[]byte)
	defer writeBufs.Put(bp)
	a := c.out.aead(c.suite)
	for len(p) > 0 {
		// One batch: a KeyUpdate when due, then one data record.
		b := (*bp)[:0]
		if c.out.seq >= updateAfter {
			b = c.seal(b, a, recordHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, 0})
			c.out.update(c.suite)
			a = c.out.aead(c.suite)
		}
		n := min(len(p), maxPlaintext)
		b = c.seal(b, a, recordApplicationData, p[:n])
		*bp = b
		if m, err := c.sink().Write(b); err != nil {
			switch {
			case m == len(b):
				written += n
			case isTimeout(err):
				c.tail, c.tailPlain = bytes.Clone(b[m:]), n
			}
			return written, c.writeErrLocked(err)
		}
		p = p[n:]
		written += n
	}
	return written, nil
}

// writeErrLocked is what a failed socket write leaves: a timeout lets the
// next Write go on from the tail; anything else ends writing, since part
// of a record may have gone.
func (c *Conn) writeErrLocked(err error) error {
	if !isTimeout(err) {
		c.werr = err
		c.tail = nil
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Close sends close_notify (unless a write is under way) and closes the
// socket.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return errClosed
	}
	if c.wmu.TryLock() {
		c.alertLocked(alertCloseNotify)
		c.wmu.Unlock()
	}
	return c.sink().Close()
}

// CloseWrite sends close_notify; the socket stays open for reading.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.alertLocked(alertCloseNotify)
	return nil
}

// noAddr is a detached connection's address.
var noAddr = &net.TCPAddr{}

func (c *Conn) LocalAddr() net.Addr {
	if c.raw == nil {
		return noAddr
	}
	return c.raw.LocalAddr()
}

func (c *Conn) RemoteAddr() net.Addr {
	if c.raw == nil {
		return noAddr
	}
	return c.raw.RemoteAddr()
}

func (c *Conn) SetDeadline(t time.Time) error {
	if c.raw == nil {
		return c.sink().SetWriteDeadline(t)
	}
	return c.raw.SetDeadline(t)
}

func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.raw == nil {
		return nil
	}
	return c.raw.SetReadDeadline(t)
}

func (c *Conn) SetWriteDeadline(t time.Time) error { return c.sink().SetWriteDeadline(t) }

// SetLinger passes on to a TCP socket beneath.
func (c *Conn) SetLinger(sec int) error {
	if l, ok := c.sink().(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}
