package edge_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ssekit/sse/internal/edge"
)

// TestRefuseEarly: what arrived in 0-RTT (handshake not complete) may be
// a replay; only requests safe to repeat are served from it.
func TestRefuseEarly(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		method   string
		complete bool
		want     int
	}{
		{"POST", false, http.StatusTooEarly},
		{"PUT", false, http.StatusTooEarly},
		{"DELETE", false, http.StatusTooEarly},
		{"GET", false, http.StatusOK},
		{"HEAD", false, http.StatusOK},
		{"POST", true, http.StatusOK},
	} {
		r := httptest.NewRequest(tc.method, "/.well-known/mercure", nil)
		r.ProtoMajor = 3
		r.TLS = &tls.ConnectionState{HandshakeComplete: tc.complete}
		w := httptest.NewRecorder()
		edge.RefuseEarly(ok).ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s, handshake complete %v: %d; want %d", tc.method, tc.complete, w.Code, tc.want)
		}
	}
}

func TestAltSvc(t *testing.T) {
	h := edge.AltSvc(8443, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, major := range []int{1, 2, 3} {
		r := httptest.NewRequest("GET", "/", nil)
		r.ProtoMajor = major
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got := w.Header().Get("Alt-Svc")
		want := `h3=":8443"; ma=86400`
		if major == 3 {
			want = ""
		}
		if got != want {
			t.Errorf("HTTP/%d: Alt-Svc %q; want %q", major, got, want)
		}
	}
}
