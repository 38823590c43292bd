package hub_test

import (
	"testing"

	"github.com/ssekit/sse/internal/testenv"
)

// TestStdlibOnly keeps hub and hubtest free of dependencies beyond the
// standard library and the root sse package, so importing the hub pulls in
// no JWT, database or metrics library.
func TestStdlibOnly(t *testing.T) {
	allowed := map[string]bool{
		"github.com/ssekit/sse":             true,
		"github.com/ssekit/sse/hub":         true,
		"github.com/ssekit/sse/hub/hubtest": true,
	}
	for _, p := range testenv.NonStandardDeps(t, "github.com/ssekit/sse/hub", "github.com/ssekit/sse/hub/hubtest") {
		if !allowed[p] {
			t.Errorf("hub depends on %s; want only the standard library and github.com/ssekit/sse", p)
		}
	}
}
