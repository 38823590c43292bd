package h2serve_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/server/h2serve"
)

// TestTLSBothRecordLayers serves HTTPS through ListenerTLS with the lean
// record layer and with crypto/tls: HTTP/2 and HTTP/1.1 requests, bodies
// past every window both ways, and a resumed session.
func TestTLSBothRecordLayers(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 64<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "no TLS state", http.StatusInternalServerError)
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %x %d %s", r.Proto, r.TLS.Version, n, big)
	})
	cert := e2etest.NewTestCert(t)
	kp, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, lean := range []bool{true, false} {
		t.Run(fmt.Sprintf("lean=%v", lean), func(t *testing.T) {
			s, err := h2serve.New(h2serve.Config{Handler: h, Poller: testPoller()})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hs := &http.Server{Handler: h}
			go hs.Serve(s.ListenerTLS(ln, &tls.Config{Certificates: []tls.Certificate{kp}}, nil, lean))
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				hs.Shutdown(ctx)
				s.Close(ctx)
			})
			url := "https://" + ln.Addr().String() + "/"
			for _, proto := range []string{"HTTP/2.0", "HTTP/1.1"} {
				cache := tls.NewLRUClientSessionCache(4)
				for i := range 2 {
					tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool, ClientSessionCache: cache}, Protocols: new(http.Protocols)}
					if proto == "HTTP/2.0" {
						tr.Protocols.SetHTTP2(true)
					} else {
						tr.Protocols.SetHTTP1(true)
					}
					resp, err := (&http.Client{Transport: tr}).Post(url, "text/plain", strings.NewReader(big))
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					tr.CloseIdleConnections()
					want := fmt.Sprintf("%s 304 %d %s", proto, len(big), big)
					if string(body) != want {
						t.Fatalf("%s: got %.60q…", proto, body)
					}
					if resumed := resp.TLS.DidResume; resumed != (i == 1) {
						t.Fatalf("%s connection %d: DidResume %v", proto, i, resumed)
					}
				}
			}
		})
	}
}
