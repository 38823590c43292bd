package hostile_test

import (
	"net/http"
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// startHub runs "ssekit serve" on the bolt store in a fresh data directory
// with the test secret and the extra flags; anonymous subscribers are
// allowed, as on a public hub.
func startHub(t *testing.T, args ...string) *e2etest.Hub {
	t.Helper()
	base := []string{"--data-dir", t.TempDir(), "--jwt-key", testSecret, "--allow-anonymous"}
	return ssekit.Start(t, e2etest.HubSpec{Args: append(base, args...)})
}

// TestHubUnderTestServes is the baseline every attack is measured against:
// the hub these tests start answers its health check.
func TestHubUnderTestServes(t *testing.T) {
	h := startHub(t)
	if got := h.Status("/healthz"); got != http.StatusOK {
		t.Fatalf("GET /healthz: got %d; want 200", got)
	}
}
