package main

import (
	"flag"
	"net"
	"net/http"

	"github.com/ssekit/sse/server"
)

// h2Flags chooses who serves HTTP/2: the hub's own server (server/h2serve,
// idle subscriber streams without a goroutine or a buffer) or net/http's.
type h2Flags struct {
	lean bool
}

func (f *h2Flags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.lean, "lean-http2", true, "serve HTTP/2 (TLS \"h2\" and h2c with prior knowledge) with the hub's own server, whose idle subscribers cost no goroutine; false: net/http's")
}

// serve runs httpSrv on ln until it stops.
func (f *h2Flags) serve(httpSrv *http.Server, srv *server.Server, ln net.Listener) error {
	if f.lean {
		// The wrapper does the TLS handshake (offering "h2") and keeps
		// the HTTP/2 connections; net/http gets the HTTP/1.1 ones.
		return httpSrv.Serve(srv.Listener(ln, httpSrv.TLSConfig, httpSrv.Handler))
	}
	if httpSrv.TLSConfig != nil {
		// ServeTLS, not Serve on a TLS listener: it is what offers
		// HTTP/2 ("h2") in the TLS handshake.
		return httpSrv.ServeTLS(ln, "", "")
	}
	return httpSrv.Serve(ln)
}
