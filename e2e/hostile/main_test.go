// Package hostile_test attacks a real `ssekit serve` process over HTTP the
// way a hostile client would, one file per class of attack (selectors,
// replay, subscription events, departures, keys, publish limits, leaks,
// cluster, debug), and checks the hub's answer, that others keep being
// served, and that no accepted update is lost. Costs (publish latency
// during an attack, RSS) are measured by the benchmarks beside the tests,
// never by timed assertions.
//
// TestMain builds the binary once (internal/e2etest); each test starts its
// own hub on 127.0.0.1 with a data directory in t.TempDir().
package hostile_test

import (
	"os"
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// testSecret is the HS256 key the tests' hubs verify tokens with.
const testSecret = "hostile-0123456789abcdef0123456789abcdef"

// ssekit is the binary TestMain built: set once before any test runs,
// read-only after.
var ssekit e2etest.Binary

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "hostile", &ssekit))
}
