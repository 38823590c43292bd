// Command contractservice is the test service of the public SSE client
// conformance suite (github.com/launchdarkly/sse-contract-tests) for this
// module's client: the harness asks it over HTTP to start clients on its
// streams, and it reports what each client sees to the harness's callback
// URLs. It declares every optional capability of the suite.
//
// Usage:
//
//	go run ./internal/contractservice [--addr 127.0.0.1:8000]
//
// then run the suite against http://127.0.0.1:8000. DELETE / (the suite's
// --stop-service-at-end), SIGINT or SIGTERM stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownTimeout bounds the wait for requests in flight at exit.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "contractservice:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends or the harness sends DELETE /.
func run(ctx context.Context, args []string, logw io.Writer) error {
	fs := flag.NewFlagSet("contractservice", flag.ContinueOnError)
	fs.SetOutput(logw)
	addr := fs.String("addr", "127.0.0.1:8000", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logw, nil))
	svc := newService(log)
	srv := &http.Server{Handler: svc, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("contractservice: listening", "addr", ln.Addr().String())

	select {
	case <-ctx.Done():
	case <-svc.Done():
	case err := <-served:
		return err
	}
	svc.Close()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
