package edge_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// TestRedirectBehindPortMapping: with --https-port the plain-HTTP
// redirect and Alt-Svc name the port clients reach (a container's
// -p 443:8443, a load balancer's 443), not the one the hub listens on.
func TestRedirectBehindPortMapping(t *testing.T) {
	tc := e2etest.NewTestCert(t)
	for _, tt := range []struct {
		httpsPort string
		location  string // after "https://127.0.0.1"
		altSvc    string
	}{
		{"443", "/.well-known/mercure?topic=a", `h3=":443"`},
		{"8443", ":8443/.well-known/mercure?topic=a", `h3=":8443"`},
	} {
		t.Run(tt.httpsPort, func(t *testing.T) {
			httpAddr := e2etest.FreeAddrs(t, 1)[0]
			args := append([]string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir(),
				"--http-addr", httpAddr, "--https-port", tt.httpsPort}, tc.Args()...)
			h := ssekit.Start(t, e2etest.HubSpec{Args: args})

			plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for _, m := range []string{http.MethodGet, http.MethodPost} {
				req, _ := http.NewRequest(m, "http://"+httpAddr+"/.well-known/mercure?topic=a", strings.NewReader(""))
				resp, err := plain.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				want := map[string]int{http.MethodGet: http.StatusMovedPermanently, http.MethodPost: http.StatusPermanentRedirect}[m]
				if loc := resp.Header.Get("Location"); resp.StatusCode != want || loc != "https://127.0.0.1"+tt.location {
					t.Errorf("plain %s: %s, Location %q; want %d to %q", m, resp.Status, loc, want, "https://127.0.0.1"+tt.location)
				}
			}

			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.Pool}}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get(h.Base() + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Alt-Svc"); !strings.HasPrefix(got, tt.altSvc) {
				t.Errorf("Alt-Svc %q; want %s… (the mapped port)", got, tt.altSvc)
			}
		})
	}
}
