package sse_test

import (
	"testing"

	"github.com/ssekit/sse/internal/testenv"
)

// TestStdlibOnly keeps the root package free of dependencies: importing
// the wire format, the server helpers and the client pulls in nothing but
// the standard library.
func TestStdlibOnly(t *testing.T) {
	for _, p := range testenv.NonStandardDeps(t, "github.com/ssekit/sse") {
		if p != "github.com/ssekit/sse" {
			t.Errorf("package sse depends on %s; want only the standard library", p)
		}
	}
}
