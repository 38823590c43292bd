package ssetest_test

import (
	"testing"

	"github.com/ssekit/sse/internal/testenv"
)

// TestStandardLibraryOnly keeps ssetest (and the mock it starts) usable in
// any project's tests: it pulls in nothing but the standard library and
// the module's own stdlib-only packages.
func TestStandardLibraryOnly(t *testing.T) {
	allowed := map[string]bool{
		"github.com/ssekit/sse":         true,
		"github.com/ssekit/sse/ssetest": true,
		"github.com/ssekit/sse/mock":    true,
	}
	for _, p := range testenv.NonStandardDeps(t, "github.com/ssekit/sse/ssetest") {
		if !allowed[p] {
			t.Errorf("package ssetest depends on %s; want only the standard library, sse and mock", p)
		}
	}
}
