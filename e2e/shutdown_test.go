package e2e_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
)

// TestGracefulShutdown sends SIGTERM to a hub with subscribers over
// HTTP/1.1 and over h2c: their streams end cleanly (so they reconnect
// elsewhere), the process exits 0, and the bolt store opens again on the
// next start with the history intact.
func TestGracefulShutdown(t *testing.T) {
	dataDir := t.TempDir()
	args := []string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", dataDir}
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	c := e2etest.NewClient(t)

	subscribers := map[string]*http.Client{"HTTP/1.1": c, "h2c": e2etest.NewH2CClient(t)}
	streams := map[string]*e2etest.Stream{}
	for name, sc := range subscribers {
		streams[name] = e2etest.OpenStream(t, sc, h.URL(), "topic=bye", "", 60*time.Second)
	}
	id := mustPublish(t, c, h.URL(), "bye", "", "before shutdown")
	for name, s := range streams {
		if ev := s.Next(t); ev.ID != id || ev.Data != "before shutdown" {
			t.Fatalf("%s subscriber got %+v; want id %q", name, ev, id)
		}
	}

	if err := h.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for name, s := range streams {
		// The hub ends the stream: the client reads its end, not an error
		// from a connection torn down, nor the test's timeout.
		if ev, err := s.Dec.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("%s subscriber after SIGTERM: got %+v, %v; want the end of the stream", name, ev, err)
		}
	}
	if err := h.Wait(30 * time.Second); err != nil {
		t.Fatalf("hub exit after SIGTERM: %v; want exit status 0", err)
	}
	if !strings.Contains(h.Out.String(), "stopped") {
		t.Errorf("hub did not log that it stopped:\n%s", h.Out)
	}

	// The store reopens (no lock left behind, nothing to repair) and still
	// has the update.
	h = ssekit.Start(t, e2etest.HubSpec{Addr: h.Addr, Args: args})
	s := e2etest.OpenStream(t, e2etest.NewClient(t), h.URL(), "topic=bye&lastEventID=earliest", "", 60*time.Second)
	if ev := s.Next(t); ev.ID != id || ev.Data != "before shutdown" {
		t.Errorf("replay after restart: got %+v; want id %q", ev, id)
	}
	if strings.Contains(strings.ToLower(h.Out.String()), "level=error") {
		t.Errorf("hub logged errors on restart:\n%s", h.Out)
	}
}
