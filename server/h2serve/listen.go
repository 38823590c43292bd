package h2serve

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http2"

	"github.com/ssekit/sse/internal/tlsrecord"
)

// Listener wraps inner for an http.Server: connections that speak HTTP/2
// (TLS with ALPN "h2", or, without tlsConfig, plain connections that open
// with the HTTP/2 preface: h2c with prior knowledge) are served by s; the
// others, HTTP/1.1, are returned by Accept (TLS ones as *tls.Conn with the
// handshake done; with leanTLS, a TLS 1.3 one as *tlsrecord.Conn, whose
// state ConnContext and WithTLSState give the requests). The TLS handshake and the first bytes are read with
// HandshakeTimeout, in one goroutine per connection being set up. The
// HTTP/2 requests go to h, or to Config.Handler when h is nil: h wraps it
// when the http.Server's own Handler does (headers every response gets).
func (s *Server) Listener(inner net.Listener, tlsConfig *tls.Config, h http.Handler) net.Listener {
	return s.ListenerTLS(inner, tlsConfig, h, true)
}

// ListenerTLS is Listener choosing who carries the TLS records of HTTP/2
// connections after a TLS 1.3 handshake: with leanTLS,
// internal/tlsrecord (an idle connection keeps no record buffer), else
// crypto/tls; HTTP/1.1 connections likewise. The handshake is
// crypto/tls's either way, and so is TLS 1.2.
func (s *Server) ListenerTLS(inner net.Listener, tlsConfig *tls.Config, h http.Handler, leanTLS bool) net.Listener {
	if h == nil {
		h = s.cfg.Handler
	}
	if tlsConfig != nil {
		tlsConfig = tlsConfig.Clone()
		protos := []string{"h2", "http/1.1"}
		for _, p := range tlsConfig.NextProtos {
			if !slices.Contains(protos, p) {
				protos = append(protos, p)
			}
		}
		tlsConfig.NextProtos = protos
		if leanTLS {
			// HTTP/1.1 too: a taken-over TLS HTTP/1.1 subscriber is then
			// kept as its bare socket and the record layer's keys.
			tlsConfig = tlsrecord.Config(tlsConfig, nil)
		}
	}
	l := &listener{inner: inner, srv: s, handler: h, tls: tlsConfig, leanTLS: leanTLS, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.accept()
	return l
}

type listener struct {
	inner   net.Listener
	srv     *Server
	handler http.Handler
	tls     *tls.Config
	leanTLS bool // TLS 1.3 HTTP/2 connections on internal/tlsrecord
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	err     error // guarded by errMu; what ended accept
	errMu   sync.Mutex
}

func (l *listener) accept() {
	var pause time.Duration
	for {
		nc, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(pause):
					continue
				case <-l.done:
				}
			}
			l.errMu.Lock()
			l.err = err
			l.errMu.Unlock()
			l.Close()
			return
		}
		pause = 0
		go l.classify(nc)
	}
}

// classify hands nc to the HTTP/2 server or to Accept.
func (l *listener) classify(nc net.Conn) {
	timeout := l.srv.cfg.HandshakeTimeout
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if l.tls != nil {
		var tc net.Conn
		var st tls.ConnectionState
		if l.leanTLS {
			var err error
			tc, st, err = tlsrecord.Handshake(nc, l.tls, nil)
			if err != nil {
				return
			}
		} else {
			t := tls.Server(nc, l.tls)
			if err := t.Handshake(); err != nil {
				t.Close()
				return
			}
			tc, st = t, t.ConnectionState()
		}
		_ = nc.SetDeadline(time.Time{})
		if isH2(st) {
			// A fresh goroutine: this one's stack grew in the handshake,
			// and an idle connection's reader keeps its stack.
			go l.srv.serveConn(tc, 0, l.handler)
			return
		}
		l.hand(tc)
		return
	}
	// Read until the bytes differ from the preface or are all of it: an
	// HTTP/1.1 request shorter than the preface is not kept waiting.
	var buf [24]byte
	n, match := 0, true
	for match && n < len(http2.ClientPreface) {
		m, err := nc.Read(buf[n:])
		n += m
		match = string(buf[:n]) == http2.ClientPreface[:n]
		if match && err != nil {
			nc.Close()
			return
		}
	}
	if match {
		go l.srv.serveConn(nc, n, l.handler)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	l.hand(&peekedConn{Conn: nc, peeked: append([]byte(nil), buf[:n]...)})
}

type tlsStateKey struct{}

// ConnContext is for http.Server.ConnContext: it keeps the TLS state of
// a connection on the hub's record layer, which net/http does not know as
// TLS, for WithTLSState.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*tlsrecord.Conn); ok {
		return context.WithValue(ctx, tlsStateKey{}, lc.State())
	}
	return ctx
}

// WithTLSState sets Request.TLS, as net/http does for crypto/tls, for
// requests on a connection ConnContext saw on the hub's record layer.
func WithTLSState(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
				r.TLS = st
			}
		}
		h.ServeHTTP(w, r)
	})
}

func isH2(st tls.ConnectionState) bool { return st.NegotiatedProtocol == "h2" }

func (l *listener) hand(nc net.Conn) {
	select {
	case l.conns <- nc:
	case <-l.done:
		nc.Close()
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.conns:
		return nc, nil
	case <-l.done:
		l.errMu.Lock()
		defer l.errMu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

func (l *listener) Addr() net.Addr { return l.inner.Addr() }

// peekedConn gives back the bytes read to classify the connection. It
// passes on what the hub's HTTP/1.1 take-over uses from the socket
// beneath (NetConn for the departure watcher, SetLinger).
type peekedConn struct {
	net.Conn
	peeked []byte
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(p, c.peeked)
		c.peeked = c.peeked[n:]
		if len(c.peeked) == 0 {
			c.peeked = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// NetConn returns the connection beneath.
func (c *peekedConn) NetConn() net.Conn { return c.Conn }

// SetLinger passes on to a TCP connection beneath.
func (c *peekedConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}
