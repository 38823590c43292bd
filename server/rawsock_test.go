package server_test

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// TestStalledClientCatchesUp: a plain HTTP/1.1 subscriber is held as its
// socket alone (server.RawSockets), whose writes never wait; one that
// stops reading while far more than the socket buffers hold is published
// for, then reads, gets every update in order: what the full buffer did
// not take stays pending and goes out once the socket drains.
func TestStalledClientCatchesUp(t *testing.T) {
	th := newTestHub(t, ssetest.HTTP1, func(h *hub.Config, s *server.Config) {
		h.QueueSize = 100000
		s.WriteTimeout = 20 * time.Second // behind, but never long enough to be judged
	})
	sub := th.open(topics("s"), nil)
	if runtime.GOOS == "linux" {
		poll.Until(t, "the connection held as a bare socket", 10*time.Second, func() bool {
			return server.RawSockets(th.server) == 1
		})
	}
	big := strings.Repeat("z", 256<<10)
	const updates = 64 // 16 MiB: more than the socket buffers of both ends
	for i := range updates {
		th.mustPublish(fmt.Sprint(i, big), "s")
	}
	readCatchUp(t, sub.resp.Body, big, updates)
}

// readCatchUp reads updates events from r and fails unless they are
// fmt.Sprint(i, big) for i from 0, in order: a stalled reader catching up.
func readCatchUp(t *testing.T, r io.Reader, big string, updates int) {
	t.Helper()
	i := 0
	for ev, err := range sse.NewDecoder(r).Events() {
		if err != nil {
			t.Fatalf("after %d updates: %v", i, err)
		}
		if ev.Data != fmt.Sprint(i, big) {
			t.Fatalf("update %d wrong (%.20q…)", i, ev.Data)
		}
		if i++; i == updates {
			return
		}
	}
	t.Fatalf("stream ended after %d of %d updates", i, updates)
}
