package hub_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStdlibOnly keeps hub and hubtest free of dependencies beyond the
// standard library and the root sse package, so importing the hub pulls in
// no JWT, database or metrics library.
func TestStdlibOnly(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps",
		"-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		"github.com/ssekit/sse/hub", "github.com/ssekit/sse/hub/hubtest").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/ssekit/sse":             true,
		"github.com/ssekit/sse/hub":         true,
		"github.com/ssekit/sse/hub/hubtest": true,
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("hub depends on %s; want only the standard library and github.com/ssekit/sse", p)
		}
	}
}
