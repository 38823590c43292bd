package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/time/rate"
)

// What one QUIC connection may cost, whoever opens it. Publishes are at
// most --max-body, and the hub reads them at once: 1 MiB per stream and 4
// MiB per connection of receive window are plenty, and bound the memory a
// client that sends and never lets the hub read can pin.
const (
	h3MaxStreams          = 100 // concurrent requests per connection, as net/http's HTTP/2
	h3MaxStreamWindow     = 1 << 20
	h3MaxConnectionWindow = 4 << 20
	// h3IdleTimeout drops a QUIC connection the client stopped answering.
	// Streams carry heartbeats (15 s by default), so a live stream never
	// reaches it; the keep-alive below keeps NAT bindings of a stream
	// whose heartbeats are turned off.
	h3IdleTimeout   = 60 * time.Second
	h3KeepAlive     = 25 * time.Second
	h3HandshakeIdle = 5 * time.Second
	// altSvcMaxAge is how long browsers remember that HTTP/3 is here.
	altSvcMaxAge = 24 * time.Hour
	// Above h3NewConnsPerSecond new connections (burst h3NewConnsBurst),
	// a client must first prove it owns its source address (a QUIC Retry,
	// one round trip more), so a flood of spoofed Initial packets costs
	// the hub no handshake state.
	h3NewConnsPerSecond = 200
	h3NewConnsBurst     = 400
)

// H3 serves HTTP/3 on a UDP socket.
type H3 struct {
	srv  *http3.Server
	pc   net.PacketConn
	tr   *quic.Transport
	ln   *quic.EarlyListener
	port int
}

// ListenH3 binds UDP on addr (the HTTPS listener's address: same host,
// same port) and prepares an HTTP/3 server for h over tlsConf (its
// certificates, or those certmagic manages). Requests sent in 0-RTT that
// are not safe to replay get 425 Too Early (RefuseEarly).
func ListenH3(addr string, tlsConf *tls.Config, h http.Handler, log *slog.Logger) (*H3, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("edge: HTTP/3 on UDP %s: %w", addr, err)
	}
	return NewH3(pc, tlsConf, h, log)
}

// NewH3 is ListenH3 on a UDP socket already open (one systemd passed in,
// ListenDatagram=). The H3 owns pc: Shutdown closes it, and so does a
// failure here.
func NewH3(pc net.PacketConn, tlsConf *tls.Config, h http.Handler, log *slog.Logger) (*H3, error) {
	addr := pc.LocalAddr().String()
	ua, ok := pc.LocalAddr().(*net.UDPAddr)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("edge: HTTP/3 on %s: not a UDP socket", addr)
	}
	port := ua.Port
	tc := tlsConf.Clone()
	tc.MinVersion = tls.VersionTLS13 // QUIC is TLS 1.3 only
	newConns := rate.NewLimiter(h3NewConnsPerSecond, h3NewConnsBurst)
	tr := &quic.Transport{
		Conn:                pc,
		VerifySourceAddress: func(net.Addr) bool { return !newConns.Allow() },
	}
	ln, err := tr.ListenEarly(http3.ConfigureTLSConfig(tc), &quic.Config{
		HandshakeIdleTimeout:       h3HandshakeIdle,
		MaxIdleTimeout:             h3IdleTimeout,
		KeepAlivePeriod:            h3KeepAlive,
		MaxIncomingStreams:         h3MaxStreams,
		MaxIncomingUniStreams:      8,
		MaxStreamReceiveWindow:     h3MaxStreamWindow,
		MaxConnectionReceiveWindow: h3MaxConnectionWindow,
		Allow0RTT:                  true,
	})
	if err != nil {
		tr.Close()
		pc.Close()
		return nil, fmt.Errorf("edge: HTTP/3 on UDP %s: %w", addr, err)
	}
	srv := &http3.Server{
		Port:        port,
		Handler:     RefuseEarly(h),
		IdleTimeout: 2 * time.Minute,
		Logger:      log,
	}
	return &H3{srv: srv, pc: pc, tr: tr, ln: ln, port: port}, nil
}

// Addr is the UDP address served.
func (s *H3) Addr() string { return s.pc.LocalAddr().String() }

// Port is the UDP port served.
func (s *H3) Port() int { return s.port }

// Serve serves until Shutdown or Close; it returns nil then.
func (s *H3) Serve() error {
	err := s.srv.ServeListener(s.ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, quic.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown sends GOAWAY on every connection, so clients open their next
// requests elsewhere (another node, or this one restarted), waits until
// the running requests end or ctx does, then closes everything.
func (s *H3) Shutdown(ctx context.Context) error {
	s.ln.Close() // no new connections; accepted ones go on
	err := s.srv.Shutdown(ctx)
	s.tr.Close()
	s.pc.Close()
	return err
}

// AltSvc advertises HTTP/3 on port in the responses of h over TCP, so a
// browser uses it from its next connection on.
func AltSvc(port int, h http.Handler) http.Handler {
	v := `h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.Itoa(int(altSvcMaxAge/time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor < 3 {
			w.Header()["Alt-Svc"] = []string{v}
		}
		h.ServeHTTP(w, r)
	})
}

// RefuseEarly answers 425 Too Early (RFC 8470) to a request that is not
// safe to replay when it arrived in 0-RTT data, before the handshake
// completed: an attacker who recorded it could replay a publish. The
// client sends it again after the handshake. Subscriptions (GET) may
// use 0-RTT.
func RefuseEarly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && !r.TLS.HandshakeComplete && !safeMethod(r.Method) {
			http.Error(w, "sent in 0-RTT: send it again after the handshake", http.StatusTooEarly)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
