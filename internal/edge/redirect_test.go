package edge_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ssekit/sse/internal/edge"
)

func TestRedirect(t *testing.T) {
	for _, tc := range []struct {
		method, target, host string
		port                 int
		code                 int
		location             string
	}{
		{"GET", "/.well-known/mercure?topic=a", "hub.example.com", 443, 301, "https://hub.example.com/.well-known/mercure?topic=a"},
		{"HEAD", "/", "hub.example.com:80", 443, 301, "https://hub.example.com/"},
		{"POST", "/.well-known/mercure", "hub.example.com", 443, 308, "https://hub.example.com/.well-known/mercure"},
		{"GET", "/x", "hub.example.com:8080", 8443, 301, "https://hub.example.com:8443/x"},
		{"GET", "/x", "[2001:db8::1]:80", 443, 301, "https://[2001:db8::1]/x"},
		{"GET", "/x", "", 443, 400, ""},
		{"GET", "/x", "evil.example@hub", 443, 400, ""},
	} {
		t.Run(tc.method+" "+tc.host+tc.target, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			r.Host = tc.host
			w := httptest.NewRecorder()
			edge.Redirect(tc.port).ServeHTTP(w, r)
			if w.Code != tc.code {
				t.Fatalf("status %d; want %d", w.Code, tc.code)
			}
			if got := w.Header().Get("Location"); got != tc.location {
				t.Errorf("Location %q; want %q", got, tc.location)
			}
		})
	}
}

// TestChallengePathWithoutChallenge: a request for a challenge token no
// order is waiting on is redirected like any other, not answered.
func TestChallengePathWithoutChallenge(t *testing.T) {
	certs, err := edge.NewCerts(edge.ACMEConfig{Domains: []string{"hub.example.com"}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer certs.Stop()
	r := httptest.NewRequest("GET", "/.well-known/acme-challenge/nothing-pending", nil)
	r.Host = "hub.example.com"
	w := httptest.NewRecorder()
	certs.HTTPHandler(443).ServeHTTP(w, r)
	if w.Code != http.StatusMovedPermanently {
		t.Errorf("status %d; want 301", w.Code)
	}
}
