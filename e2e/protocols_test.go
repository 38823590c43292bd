package e2e_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
)

// TestH2C subscribes and publishes over HTTP/2 cleartext.
func TestH2C(t *testing.T) {
	h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir()}})
	c := e2etest.NewH2CClient(t)
	s := e2etest.OpenStream(t, c, h.URL(), "topic=h2c", "", 60*time.Second)
	if s.Resp.ProtoMajor != 2 {
		t.Fatalf("subscription over %s; want HTTP/2", s.Resp.Proto)
	}
	id := mustPublish(t, c, h.URL(), "h2c", "", "over h2c")
	if ev := s.Next(t); ev.ID != id || ev.Data != "over h2c" {
		t.Errorf("got %+v; want id %q, data %q", ev, id, "over h2c")
	}
}

// TestTLS serves HTTPS with --tls-cert/--tls-key (a self-signed
// certificate made here): a Go client subscribes over HTTP/2, "ssekit
// publish --insecure" publishes, and "ssekit listen --insecure" receives.
func TestTLS(t *testing.T) {
	tc := e2etest.NewTestCert(t)
	pool := tc.Pool
	h := ssekit.Start(t, e2etest.HubSpec{Args: append([]string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir()}, tc.Args()...)})
	if !strings.HasPrefix(h.URL(), "https://") {
		t.Fatalf("hub URL %s; want https", h.URL())
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	s := e2etest.OpenStream(t, c, h.URL(), "topic=tls", "", 60*time.Second)
	if s.Resp.ProtoMajor != 2 || s.Resp.TLS == nil {
		t.Fatalf("subscription over %s (TLS %v); want HTTP/2 over TLS", s.Resp.Proto, s.Resp.TLS != nil)
	}

	stdout, stderr, code := ssekit.Run(t, []string{"SSEKIT_TOKEN=" + publisherToken(t)}, "",
		"publish", "--insecure", "--hub", h.URL(), "--topic", "tls", "secret data")
	if code != 0 {
		t.Fatalf("ssekit publish over TLS: exit code %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	if ev := s.Next(t); ev.ID != id || ev.Data != "secret data" {
		t.Errorf("got %+v; want id %q, data %q", ev, id, "secret data")
	}

	// Without --insecure the self-signed certificate is refused, in one line.
	_, stderr, code = ssekit.Run(t, []string{"SSEKIT_TOKEN=" + publisherToken(t)}, "",
		"publish", "--hub", h.URL(), "--topic", "tls", "x")
	if code != 1 || !strings.Contains(stderr, "certificate") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("publish to a self-signed hub without --insecure: exit code %d, stderr %q; want 1 and one line about the certificate", code, stderr)
	}

	stdout, stderr, code = ssekit.Run(t, nil, "", "listen", "--insecure", "--json", "--max-events", "1", "--timeout", "60s",
		"--last-event-id", "earliest", h.URL()+"?topic=tls")
	if code != 0 || !strings.Contains(stdout, `"data":"secret data"`) || !strings.Contains(stderr, "HTTP/2") {
		t.Errorf("ssekit listen over TLS: exit code %d, stdout %q, stderr %q; want the update, over HTTP/2", code, stdout, stderr)
	}
}
