// Package jsclient_test tests the browser client, clients/js, against the
// real hub: it runs the module's node tests (node --test) with a hub
// started here, checks that clients/js/bin/listen.js and `ssekit listen`
// print the same --json lines and exit with the same codes, and drives
// Debian's Chromium (internal/browsertest) through the cases only a browser
// has: a page importing /ssekit-client.js from the hub with a bearer
// header, a hub restart and a proxy's 502, eight tabs sharing one
// connection, and the leader tab closing.
//
// TestMain builds ssekit once (internal/e2etest). Tests that need node or
// Chromium skip without them, and fail under SSEKIT_REQUIRE_ALL=1.
package jsclient_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
)

// testSecret is the HS256 key the tests' hubs verify tokens with.
const testSecret = "jsclient-0123456789abcdef0123456789abcdef"

// ssekit is the binary TestMain built: set once before any test runs,
// read-only after.
var ssekit e2etest.Binary

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "e2e/jsclient", &ssekit))
}

// clientDir is clients/js in this checkout.
func clientDir(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's source directory")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "clients", "js")
}

// startHub runs "ssekit serve" with the test secret, no anonymous
// subscribers, and the extra flags.
func startHub(t *testing.T, args ...string) *e2etest.Hub {
	t.Helper()
	base := []string{"--data-dir", t.TempDir(), "--jwt-key", testSecret}
	return ssekit.Start(t, e2etest.HubSpec{Args: append(base, args...)})
}

func publisherToken(t *testing.T) string { return e2etest.PublisherToken(t, testSecret) }

func subscriberToken(t *testing.T) string {
	return e2etest.Token(t, testSecret, hub.Claims{Subscribe: []string{"*"}})
}
