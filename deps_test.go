package sse_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStdlibOnly keeps the root package free of dependencies: importing
// the wire format, the server helpers and the client pulls in nothing but
// the standard library.
func TestStdlibOnly(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps",
		"-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/ssekit/sse").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/ssekit/sse" {
			t.Errorf("package sse depends on %s; want only the standard library", p)
		}
	}
}
