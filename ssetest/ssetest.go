// Package ssetest runs event-stream servers for tests, as net/http/httptest
// does for HTTP: over HTTP/1.1 and over HTTP/2, the two ways a stream is
// served, so a test can run in both.
package ssetest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The protocols NewServer speaks.
const (
	HTTP1 = "HTTP/1.1" // cleartext HTTP/1.1
	HTTP2 = "HTTP/2"   // HTTP/2 over TLS
)

// Protocols lists HTTP1 and HTTP2, for tests that run in both.
var Protocols = []string{HTTP1, HTTP2}

// NewServer starts a server for h speaking proto (HTTP1 or HTTP2) and
// closes it when the test ends. Its Client trusts it and speaks proto.
func NewServer(t testing.TB, proto string, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	switch proto {
	case HTTP1:
		srv.Start()
	case HTTP2:
		srv.EnableHTTP2 = true
		srv.StartTLS()
	default:
		t.Fatalf("ssetest: unknown protocol %q; want %q or %q", proto, HTTP1, HTTP2)
	}
	t.Cleanup(srv.Close)
	return srv
}

// Run runs f as one subtest per protocol, named after it.
func Run(t *testing.T, f func(t *testing.T, proto string)) {
	t.Helper()
	for _, proto := range Protocols {
		t.Run(proto, func(t *testing.T) { f(t, proto) })
	}
}
