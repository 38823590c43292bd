// Package testenv lets tests that need an outside tool (a browser, a
// redis-server, python3) skip cleanly on a machine without it, and fail
// instead wherever the full suite must run.
//
// Set SSEKIT_REQUIRE_ALL=1 (as .ci/run does) to turn every such skip into a
// failure, so a CI machine that lost a tool cannot pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RequireAllEnv is the environment variable that turns skips into failures
// when set to "1".
const RequireAllEnv = "SSEKIT_REQUIRE_ALL"

// RequireAll reports whether missing tools must fail tests instead of
// skipping them.
func RequireAll() bool { return os.Getenv(RequireAllEnv) == "1" }

// Skip skips the test with the formatted reason, or fails it when
// RequireAll is set.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if RequireAll() {
		t.Fatalf(format+" (required: "+RequireAllEnv+"=1)", args...)
	}
	t.Skipf(format, args...)
}

// NeedCommand returns the path of the named executable, looked up in PATH,
// or skips the test (fails it under RequireAll) when it is not installed.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Skip(t, "testenv: %s not installed: %v", name, err)
	}
	return path
}

// NonStandardDeps returns the import paths of pkgs and of every package they
// depend on (go list -deps, tests left out) that are not in the standard
// library, for tests that keep a package's dependencies in check. It fails
// the test when go list does.
func NonStandardDeps(t testing.TB, pkgs ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("testenv: go command not found: %v", err)
	}
	args := append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, pkgs...)
	out, err := exec.Command(gobin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: go list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}
