package e2e_test

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/internal/e2etest"
)

// TestKillMidPublish kills the hub (SIGKILL, as kill -9) while 8 publishers
// are publishing, restarts it on the same data directory, and checks that
// the durable store kept its promise: every update acknowledged with a 200
// is replayed, once, in an order consistent with each publisher's order;
// and that a subscriber resuming from the middle gets exactly the rest.
func TestKillMidPublish(t *testing.T) {
	const (
		publishers = 8
		perPub     = 200
		killAfter  = publishers * perPub / 4 // acknowledged updates
	)
	dataDir := t.TempDir()
	args := []string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", dataDir}
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	tok := publisherToken(t)

	// acked[g] lists publisher g's acknowledged ids, in publishing order.
	var (
		acked     [publishers][]string
		ackCount  atomic.Int64
		reachKill = make(chan struct{})
		closeOnce sync.Once
		wg        sync.WaitGroup
	)
	for g := range publishers {
		wg.Go(func() {
			c := e2etest.NewClient(t)
			for i := range perPub {
				form := url.Values{"topic": {"kill"}, "data": {fmt.Sprintf("%d/%d", g, i)}}
				id, err := e2etest.Publish(t.Context(), c, h.URL(), tok, form)
				if err != nil {
					return // the hub is gone; this request may or may not have landed
				}
				acked[g] = append(acked[g], id)
				if ackCount.Add(1) >= killAfter {
					closeOnce.Do(func() { close(reachKill) })
				}
			}
		})
	}
	select {
	case <-reachKill:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d updates acknowledged in 60s", ackCount.Load())
	}
	h.Kill()
	wg.Wait()
	total := 0
	for g := range publishers {
		total += len(acked[g])
	}
	if total == publishers*perPub {
		t.Fatalf("all %d updates were acknowledged before the kill: the test proves nothing", total)
	}
	t.Logf("%d of %d updates acknowledged before kill -9", total, publishers*perPub)

	// The same data directory, the same port.
	h = ssekit.Start(t, e2etest.HubSpec{Addr: h.Addr, Args: args})
	c := e2etest.NewClient(t)
	// A marker published after the restart ends the replay.
	end := mustPublish(t, c, h.URL(), "kill", "end-marker", "end")

	s := e2etest.OpenStream(t, c, h.URL(), "topic=kill&lastEventID=earliest", "", 60*time.Second)
	if got := s.Resp.Header.Get("Last-Event-ID"); got != "earliest" {
		t.Errorf("Last-Event-ID response header %q; want earliest", got)
	}
	replay := s.Until(t, end)
	replay = replay[:len(replay)-1]
	checkReplay(t, replay, acked[:])
	t.Logf("replayed %d: the acknowledged ones and %d that were in flight", len(replay), len(replay)-total)

	// Resume from the middle of the history: exactly what follows it.
	mid := len(replay) / 2
	s = e2etest.OpenStream(t, c, h.URL(), "topic=kill", replay[mid].ID, 60*time.Second)
	if got := s.Resp.Header.Get("Last-Event-ID"); got != replay[mid].ID {
		t.Errorf("Last-Event-ID response header %q; want %q", got, replay[mid].ID)
	}
	rest := s.Until(t, end)
	rest = rest[:len(rest)-1]
	if len(rest) != len(replay)-mid-1 {
		t.Fatalf("resuming after update %d of %d replayed %d updates; want %d", mid, len(replay), len(rest), len(replay)-mid-1)
	}
	for i, ev := range rest {
		if want := replay[mid+1+i]; ev.ID != want.ID || ev.Data != want.Data {
			t.Fatalf("resumed update %d: got %q %q; want %q %q", i, ev.ID, ev.Data, want.ID, want.Data)
		}
	}
}

// checkReplay checks a replay of the publishers' updates against what was
// acknowledged: every acknowledged id once with its data, no id twice, and
// each publisher's updates in the order it published them. Updates in
// flight at the kill may or may not be there: at most one per publisher,
// right after its acknowledged ones.
func checkReplay(t *testing.T, replay []sse.Event, acked [][]string) {
	t.Helper()
	seen := make(map[string]bool)
	next := make([]int, len(acked)) // next[g]: the index publisher g's next update must have
	for _, ev := range replay {
		if seen[ev.ID] {
			t.Fatalf("id %q replayed twice", ev.ID)
		}
		seen[ev.ID] = true
		gs, is, ok := strings.Cut(ev.Data, "/")
		g, err1 := strconv.Atoi(gs)
		i, err2 := strconv.Atoi(is)
		if !ok || err1 != nil || err2 != nil || g < 0 || g >= len(acked) {
			t.Fatalf("replayed data %q is not one the publishers sent", ev.Data)
		}
		if i != next[g] {
			t.Fatalf("publisher %d: replay has its update %d where %d comes next (out of order, or a gap)", g, i, next[g])
		}
		next[g]++
		if i < len(acked[g]) && acked[g][i] != ev.ID {
			t.Fatalf("publisher %d, update %d: replayed id %q; acknowledged %q", g, i, ev.ID, acked[g][i])
		}
	}
	for g, ids := range acked {
		if next[g] < len(ids) {
			t.Errorf("publisher %d: %d updates acknowledged, %d replayed: lost %q…", g, len(ids), next[g], ids[next[g]])
		}
		if next[g] > len(ids)+1 {
			t.Errorf("publisher %d: %d updates acknowledged, %d replayed: more than the one in flight", g, len(ids), next[g])
		}
	}
}
