package tlsrecord

import (
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// Config returns a clone of base prepared for Handshake: its
// GetConfigForClient (base's own, if any, runs first) hands crypto/tls a
// per-connection clone whose KeyLogWriter is the connection's, which is
// how the traffic secrets come out of crypto/tls without touching its
// internals. Build it once and share it between connections. A client
// for which want (nil: every one) says no, from its ClientHello, stays on
// crypto/tls with nothing of this package's in the way. The others'
// ConnectionState has no keying-material exporter (ExportKeyingMaterial
// returns an error).
func Config(base *tls.Config, want func(*tls.ClientHelloInfo) bool) *tls.Config {
	orig := base.Clone()
	cfg := base.Clone()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c := orig
		if orig.GetConfigForClient != nil {
			got, err := orig.GetConfigForClient(hello)
			if err != nil {
				return nil, err
			}
			if got != nil {
				c = got
			}
		}
		hc, ok := hello.Conn.(*handshakeConn)
		if !ok {
			return c, nil
		}
		if want != nil && !want(hello) {
			// crypto/tls has read only the ClientHello's record: passing
			// everything through from here is safe.
			hc.passthrough = true
			return c, nil
		}
		c = c.Clone()
		hc.keyLogNext = c.KeyLogWriter // an operator's SSLKEYLOGFILE goes on working
		c.KeyLogWriter = (*keyLog)(hc)
		// The ConnectionState kept for the connection's life then holds
		// crypto/tls's "unavailable" exporter instead of a closure over
		// the exporter secret (about 0.5 KiB per connection): the hub
		// never exports keying material. A server never renegotiates, so
		// this changes nothing else.
		c.Renegotiation = tls.RenegotiateOnceAsClient
		return c, nil
	}
	return cfg
}

// maxRecorded bounds what the server's handshake flight may be kept for
// counting the records it sent under the application key.
const maxRecorded = 256 << 10

// handshakeConn sits between crypto/tls and the socket during the
// handshake: it never returns bytes beyond the record being read (so what
// the client sends after its Finished stays in the kernel for the record
// layer), records the server's encrypted records, and receives the key
// log. After the handshake it passes everything through.
type handshakeConn struct {
	net.Conn
	passthrough bool

	hdr      [5]byte
	hdrOff   int  // bytes of hdr given to crypto/tls
	left     int  // bytes of the current record's body not yet given
	inRecord bool // hdr holds the current record's header

	pending []byte   // a partial outgoing record
	sent    [][]byte // outgoing records of type application_data
	size    int
	over    bool

	clientSecret, serverSecret []byte
	keyLogNext                 io.Writer // the config's own KeyLogWriter, if any
}

func (h *handshakeConn) Read(p []byte) (int, error) {
	if h.passthrough {
		return h.Conn.Read(p)
	}
	if !h.inRecord {
		if _, err := io.ReadFull(h.Conn, h.hdr[:]); err != nil {
			return 0, err
		}
		h.hdrOff, h.inRecord = 0, true
		h.left = int(h.hdr[3])<<8 | int(h.hdr[4])
	}
	if h.hdrOff < len(h.hdr) {
		n := copy(p, h.hdr[h.hdrOff:])
		h.hdrOff += n
		h.inRecord = h.hdrOff < len(h.hdr) || h.left > 0
		return n, nil
	}
	if len(p) > h.left {
		p = p[:h.left]
	}
	n, err := h.Conn.Read(p)
	h.left -= n
	h.inRecord = h.left > 0
	return n, err
}

func (h *handshakeConn) Write(p []byte) (int, error) {
	if !h.passthrough && !h.over {
		h.record(p)
	}
	return h.Conn.Write(p)
}

// record splits the outgoing stream into records and keeps the
// application_data ones.
func (h *handshakeConn) record(p []byte) {
	h.pending = append(h.pending, p...)
	for len(h.pending) >= 5 {
		n := 5 + (int(h.pending[3])<<8 | int(h.pending[4]))
		if len(h.pending) < n {
			break
		}
		if h.pending[0] == recordApplicationData {
			h.sent = append(h.sent, append([]byte(nil), h.pending[:n]...))
			h.size += n
		}
		h.pending = h.pending[n:]
	}
	if len(h.pending) == 0 {
		h.pending = nil
	}
	if h.size > maxRecorded {
		h.over = true
	}
}

// Write receives the key log lines of crypto/tls (it is the connection's
// KeyLogWriter too; a net.Conn's Write is the other one, so this one is
// named by its own type in Config).
type keyLog handshakeConn

func (k *keyLog) Write(line []byte) (int, error) {
	if k.keyLogNext != nil {
		_, _ = k.keyLogNext.Write(line)
	}
	f := strings.Fields(string(line))
	if len(f) != 3 {
		return len(line), nil
	}
	secret, err := hex.DecodeString(f[2])
	if err != nil {
		return len(line), nil
	}
	switch f[0] {
	case "CLIENT_TRAFFIC_SECRET_0":
		k.clientSecret = secret
	case "SERVER_TRAFFIC_SECRET_0":
		k.serverSecret = secret
	}
	return len(line), nil
}

// NetConn returns the socket beneath.
func (h *handshakeConn) NetConn() net.Conn { return h.Conn }

// SyscallConn passes on the socket's, for the hub's departure watcher.
func (h *handshakeConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := h.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// SetLinger passes on to a TCP socket beneath.
func (h *handshakeConn) SetLinger(sec int) error {
	if l, ok := h.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}

// Handshake runs crypto/tls's server handshake on raw with cfg (from
// Config). When TLS 1.3 was negotiated and lean (nil: always) says yes
// for the handshake's state, it returns a *Conn, which carries
// the record layer itself from then on; otherwise (TLS 1.2, or the key
// log did not give both secrets) the *tls.Conn, as crypto/tls serves it.
// The ConnectionState is the handshake's either way. On error raw is
// closed.
func Handshake(raw net.Conn, cfg *tls.Config, lean func(tls.ConnectionState) bool) (net.Conn, tls.ConnectionState, error) {
	hc := &handshakeConn{Conn: raw}
	tc := tls.Server(hc, cfg)
	if err := tc.Handshake(); err != nil {
		tc.Close()
		return nil, tls.ConnectionState{}, err
	}
	st := tc.ConnectionState()
	s, ok := suiteByID(st.CipherSuite)
	if hc.passthrough || st.Version != tls.VersionTLS13 || !ok || lean != nil && !lean(st) || len(hc.clientSecret) != s.hashLen || len(hc.serverSecret) != s.hashLen || hc.over || len(hc.pending) != 0 {
		hc.passthrough = true
		hc.sent, hc.pending = nil, nil
		return tc, st, nil
	}
	c := newConn(raw, s, hc.clientSecret, hc.serverSecret)
	// The server may have sent records under its application key already
	// (NewSessionTicket): count them by decrypting, not by assumption.
	out := c.out.aead(s)
	for _, rec := range hc.sent {
		if _, err := out.Open(nil, c.out.nonce(), rec[5:], rec[:5]); err == nil {
			c.out.seq++
		}
	}
	c.state = &st
	// tc is dropped, not closed: closing it would send close_notify and
	// close the socket. Its buffers go with it.
	return c, st, nil
}
