// Package e2e_test runs the real ssekit binary as a separate process, as a
// user or an operator would: publish and subscribe through the CLI, kill -9
// in the middle of publishing, graceful shutdown on SIGTERM, a real browser
// across a hub restart, h2c and TLS.
//
// TestMain builds the binary once (internal/e2etest); each test starts its
// own hub processes on 127.0.0.1 with a data directory in t.TempDir().
package e2e_test

import (
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// testSecret is the HS256 key the tests' hubs verify tokens with.
const testSecret = "e2e-0123456789abcdef0123456789abcdef-secret"

// ssekit is the binary TestMain built: set once before any test runs,
// read-only after.
var ssekit e2etest.Binary

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "e2e", &ssekit))
}

// publisherToken may publish to every topic.
func publisherToken(t *testing.T) string { return e2etest.PublisherToken(t, testSecret) }

// mustPublish publishes data to topic with the given id ("" : the hub's).
func mustPublish(t *testing.T, c *http.Client, hubURL, topic, id, data string) string {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}}
	if id != "" {
		form.Set("id", id)
	}
	got, err := e2etest.Publish(t.Context(), c, hubURL, publisherToken(t), form)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
