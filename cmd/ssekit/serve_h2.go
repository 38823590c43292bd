package main

import (
	"context"
	"flag"
	"net"
	"net/http"
	"strconv"

	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/server/h2serve"
)

// h2Flags chooses who serves HTTP/2: the hub's own server (server/h2serve,
// idle subscriber streams without a goroutine or a buffer) or net/http's.
type h2Flags struct {
	lean        bool
	leanTLS     bool
	memoryLimit string
	fs          *flag.FlagSet // for --max-subscribers, which the memory limit is derived from
}

func (f *h2Flags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.lean, "lean-http2", true, "serve HTTP/2 (TLS \"h2\" and h2c with prior knowledge) with the hub's own server, whose idle subscribers cost no goroutine; false: net/http's")
	fs.BoolVar(&f.leanTLS, "lean-tls", true, "with --lean-http2, carry the TLS 1.3 records of every connection (HTTP/2, and HTTP/1.1 subscribers kept as bare sockets) with the hub's own record layer (no buffer per idle connection; the handshake stays crypto/tls's); false: crypto/tls for everything")
	fs.StringVar(&f.memoryLimit, "memory-limit", "auto", "soft memory `LIMIT` of the hub process (GOMEMLIMIT), e.g. 2GiB; auto: 90% of the machine's (or cgroup's) memory, or 64 MiB + 32 KiB per --max-subscribers when less, unless GOMEMLIMIT is set; off: none. Free heap pages are returned to the OS after a wave of subscriptions either way")
	f.fs = fs
}

// serve runs httpSrv on ln until it stops.
func (f *h2Flags) serve(httpSrv *http.Server, srv *server.Server, ln net.Listener) error {
	maxSubs := 0
	if v := f.fs.Lookup("max-subscribers"); v != nil {
		maxSubs, _ = strconv.Atoi(v.Value.String())
	}
	if maxSubs == 0 {
		maxSubs = server.DefaultMaxSubscribers()
	}
	if _, err := applyMemoryLimit(f.memoryLimit, maxSubs); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go trimMemory(ctx)
	if f.lean {
		// The wrapper does the TLS handshake (offering "h2") and keeps
		// the HTTP/2 connections; net/http gets the HTTP/1.1 ones.
		l := srv.ListenerTLS(ln, httpSrv.TLSConfig, httpSrv.Handler, f.leanTLS)
		if httpSrv.TLSConfig != nil && f.leanTLS {
			// HTTP/1.1 on the hub's record layer: Request.TLS as on
			// crypto/tls.
			httpSrv.ConnContext = h2serve.ConnContext
			httpSrv.Handler = h2serve.WithTLSState(httpSrv.Handler)
		}
		return httpSrv.Serve(l)
	}
	if httpSrv.TLSConfig != nil {
		// ServeTLS, not Serve on a TLS listener: it is what offers
		// HTTP/2 ("h2") in the TLS handshake.
		return httpSrv.ServeTLS(ln, "", "")
	}
	return httpSrv.Serve(ln)
}
