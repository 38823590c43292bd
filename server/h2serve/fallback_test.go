package h2serve_test

import (
	"errors"
	"io"
	"net/http"
	"runtime"
	"syscall"
	"testing"

	"github.com/ssekit/sse/internal/h2test"
	"github.com/ssekit/sse/server/h2serve"
)

// testPoller is what serve gives a Config without a Poller: this
// package's tests run with readiness-driven reads unless a test (below)
// sets it to run them on the reader-goroutine path.
var testPoller = newTestPoller

// refusingPoller cannot watch any socket, as for a connection that is not
// a socket of this process.
type refusingPoller struct{}

func (refusingPoller) WatchReadable(syscall.RawConn, func()) (uint64, error) {
	return 0, errors.New("not watchable")
}
func (refusingPoller) Rearm(syscall.RawConn, uint64) error { return errors.New("not watchable") }
func (refusingPoller) Unwatch(syscall.RawConn, uint64)     {}

// TestReaderGoroutinePath: without a Poller (other systems, or a hub
// without one) and with one that cannot watch the connection, each
// connection keeps its reader goroutine, and the protocol and its
// mitigations hold there too.
func TestReaderGoroutinePath(t *testing.T) {
	for _, p := range []struct {
		name string
		p    h2serve.Poller
	}{{"none", nil}, {"refused", refusingPoller{}}} {
		t.Run(p.name, func(t *testing.T) {
			testPoller = func() h2serve.Poller { return p.p }
			defer func() { testPoller = newTestPoller }()
			t.Run("bodies", TestRequestsAndBodiesBothWays)
			t.Run("window", TestSmallClientWindow)
			t.Run("rapidreset", TestRapidReset)
			t.Run("continuation", TestContinuationFlood)
			t.Run("floods", TestControlFloods)
			t.Run("takeover", TestTakeOver)
			t.Run("goaway", TestGoAwayOnClose)
			t.Run("tls", TestTLSBothRecordLayers)
		})
	}
}

// TestReadsDrivenByPoller: with a Poller, a connection's reads after its
// first SETTINGS wait in the poller, not in a goroutine of the
// connection's: requests on it are answered, and it was armed.
func TestReadsDrivenByPoller(t *testing.T) {
	p := testPoller()
	if p == nil {
		t.Skip("sockets are read with read(2) on unix only")
	}
	addr, _ := serve(t, h2serve.Config{Poller: p, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})})
	c := h2test.Client(t, nil)
	for range 3 {
		resp, err := c.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" || resp.ProtoMajor != 2 {
			t.Fatalf("%s %q", resp.Proto, b)
		}
	}
	if pollerArms(p) == 0 && runtime.GOOS != "windows" {
		t.Fatal("the connection was never armed in the poller")
	}
}
