package e2e_test

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
)

// TestLeanTLSFlag subscribes over TLS HTTP/2 with the hub's record layer
// (--lean-tls, the default) and with crypto/tls's (SSEKIT_LEAN_TLS=false,
// the flag's environment twin), and gets an update through each, also
// over a resumed TLS session.
func TestLeanTLSFlag(t *testing.T) {
	cert := e2etest.NewTestCert(t)
	for _, env := range []string{"SSEKIT_LEAN_TLS=true", "SSEKIT_LEAN_TLS=false"} {
		t.Run(env, func(t *testing.T) {
			h := ssekit.Start(t, e2etest.HubSpec{
				Args: append([]string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir()}, cert.Args()...),
				Env:  []string{env},
			})
			cache := tls.NewLRUClientSessionCache(4)
			for i := range 2 {
				tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool, ClientSessionCache: cache}, Protocols: new(http.Protocols)}
				tr.Protocols.SetHTTP2(true)
				c := &http.Client{Transport: tr}
				s := e2etest.OpenStream(t, c, h.URL(), "topic=lean", "", 60*time.Second)
				if s.Resp.ProtoMajor != 2 || s.Resp.TLS == nil || s.Resp.TLS.Version != tls.VersionTLS13 {
					t.Fatalf("subscription over %s; want HTTP/2 over TLS 1.3", s.Resp.Proto)
				}
				if s.Resp.TLS.DidResume != (i == 1) {
					t.Fatalf("connection %d: DidResume %v", i, s.Resp.TLS.DidResume)
				}
				id := mustPublish(t, c, h.URL(), "lean", "", "over TLS")
				if ev := s.Next(t); ev.ID != id || ev.Data != "over TLS" {
					t.Fatalf("got %+v; want id %q", ev, id)
				}
				tr.CloseIdleConnections()
			}
		})
	}
}
