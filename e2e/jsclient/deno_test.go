package jsclient_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/testenv"
)

// TestDenoSuite runs the module's tests (the same files as TestNodeSuite:
// every vector in every split, reconnection, refusals, timeouts, the real
// hub) under Deno, the third runtime the module is for. Deno comes from
// the npm package pinned in clients/js/package-lock.json (npm ci).
// listen.js is a Node command, so its tests still spawn node.
func TestDenoSuite(t *testing.T) {
	testenv.NeedCommand(t, "node")
	dir := clientDir(t)
	deno := filepath.Join(dir, "node_modules", ".bin", "deno")
	if err := exec.Command(deno, "--version").Run(); err != nil {
		testenv.Skip(t, "no deno in %s (run npm ci there): %v", filepath.Dir(deno), err)
	}
	h := startHub(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, deno, "test", "--no-check",
		"--allow-read", "--allow-env", "--allow-net=127.0.0.1", "--allow-run=node", "test/")
	cmd.Dir = dir
	cmd.Env = e2etest.CleanEnv(
		"NO_COLOR=1",
		"SSEKIT_HUB="+h.Base(),
		"SSEKIT_PUBLISHER_TOKEN="+publisherToken(t),
		"SSEKIT_SUBSCRIBER_TOKEN="+subscriberToken(t),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deno test in %s: %v\n%s", dir, err, lastLines(string(out), 60))
	}
	s := string(out)
	// The summary: "ok | 99 passed | 0 failed (5s)", with "| N ignored"
	// before the time when a test was skipped (the hub's, without a hub).
	summary := ""
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, " passed | ") {
			summary = l
		}
	}
	if !strings.Contains(s, "receives the hub's updates with a bearer header, and resumes with Last-Event-ID ... ok") ||
		!strings.Contains(summary, "| 0 failed") || strings.Contains(summary, "ignored") {
		t.Errorf("under Deno some tests did not run or did not pass (summary %q):\n%s", summary, lastLines(s, 60))
	}
	t.Logf("deno: %s", strings.TrimSpace(summary))
}
