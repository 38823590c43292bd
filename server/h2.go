package server

import (
	"crypto/tls"
	"net"
	"net/http"

	"github.com/ssekit/sse/server/h2serve"
)

func (s *Server) newH2() (*h2serve.Server, error) {
	return h2serve.New(h2serve.Config{
		Handler:      s,
		WriteTimeout: s.cfg.WriteTimeout,
		Logger:       s.log,
		Poller:       s.pool.departures.poller(),
	})
}

// Listener wraps ln so that its HTTP/2 connections (TLS with ALPN "h2"
// when tlsConfig is set, else h2c with prior knowledge) are served by the
// server's own HTTP/2 server (server/h2serve), whose idle subscriber
// streams keep no goroutine and no buffer, written by the same writer pool
// as taken-over HTTP/1.1 connections. Pass the returned listener to an
// http.Server's Serve (not ServeTLS): it gets the HTTP/1.1 connections,
// TLS ones already handshaken. Shutdown sends the HTTP/2 clients GOAWAY.
// The HTTP/2 requests go to h, which must end in s (nil: s itself): give
// the http.Server's Handler when it wraps s, so both protocols see the
// same wrappers (the Alt-Svc header of HTTP/3, say).
func (s *Server) Listener(ln net.Listener, tlsConfig *tls.Config, h http.Handler) net.Listener {
	return s.listen(s.h2.Listener(ln, tlsConfig, h))
}

// ListenerTLS is Listener choosing who carries the TLS 1.3 records of
// HTTP/2 connections: with leanTLS the hub's own record layer
// (internal/tlsrecord, no buffer per idle connection), else crypto/tls.
func (s *Server) ListenerTLS(ln net.Listener, tlsConfig *tls.Config, h http.Handler, leanTLS bool) net.Listener {
	return s.listen(s.h2.ListenerTLS(ln, tlsConfig, h, leanTLS))
}
