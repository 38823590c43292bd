// Package edge_test runs the real ssekit binary on the internet's terms,
// without a proxy: "serve --domain" against Pebble (an ACME CA run inside
// the test), the plain-HTTP redirect, and HTTP/3 with quic-go's client and
// Debian's Chromium. Everything binds 127.0.0.1.
package edge_test

import (
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// testSecret is the HS256 key the tests' hubs verify tokens with.
const testSecret = "e2e-edge-0123456789abcdef0123456789abcdef"

var ssekit e2etest.Binary

func TestMain(m *testing.M) { os.Exit(e2etest.Main(m, "e2e/edge", &ssekit)) }

func mustPublish(t *testing.T, c *http.Client, hubURL, topic, id, data string) string {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}}
	if id != "" {
		form.Set("id", id)
	}
	got, err := e2etest.Publish(t.Context(), c, hubURL, e2etest.PublisherToken(t, testSecret), form)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
