package e2e_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
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

// TestKillMidBatchAndStream kills a bolt hub (kill -9) while publishers
// send batches and one streams updates over one long-lived request, then
// restarts it on the same data directory: every update of an acknowledged
// batch, and every update the stream had acknowledged, is replayed once;
// of the rest only what was in flight can be there (one batch per
// publisher, the stream's updates after its last acknowledgement, in
// order), nothing else.
func TestKillMidBatchAndStream(t *testing.T) {
	const (
		publishers = 4
		batches    = 60
		batchSize  = 20
		streamMax  = 20000
		killAfter  = publishers * batches * batchSize / 4 // acknowledged batched updates
	)
	dataDir := t.TempDir()
	args := []string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", dataDir}
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	tok := publisherToken(t)
	batchURL := h.Base() + hub.BatchPath

	var (
		mu         sync.Mutex
		acked      = map[string]bool{} // guarded by mu
		ackedBatch atomic.Int64
		reachKill  = make(chan struct{})
		closeOnce  sync.Once
		wg         sync.WaitGroup
	)
	ack := func(ids []string) {
		mu.Lock()
		for _, id := range ids {
			acked[id] = true
		}
		mu.Unlock()
	}
	for g := range publishers {
		wg.Go(func() {
			c := e2etest.NewClient(t)
			for b := range batches {
				var body strings.Builder
				ids := make([]string, batchSize)
				for i := range ids {
					ids[i] = fmt.Sprintf("b%d-%d-%d", g, b, i)
					fmt.Fprintf(&body, `{"topic":"kill","id":%q,"data":"x"}`+"\n", ids[i])
				}
				got, err := postBatch(t, c, batchURL, tok, body.String())
				if err != nil {
					return // the hub is gone; this batch may or may not have landed
				}
				if !slices.Equal(got, ids) {
					t.Errorf("batch acknowledged %v; want %v", got, ids)
					return
				}
				ack(ids)
				if ackedBatch.Add(batchSize) >= killAfter {
					closeOnce.Do(func() { close(reachKill) })
				}
			}
		})
	}
	// The stream: one update every millisecond, acknowledgements read as
	// they come.
	streamAcked := make(chan int, 1) // how many of the stream's updates were acknowledged
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, batchURL+"?stream=1", pr)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+tok)
	go func() {
		defer pw.Close()
		for i := range streamMax {
			if _, err := fmt.Fprintf(pw, `{"topic":"kill","id":"s-%d","data":"x"}`+"\n", i); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	resp, err := e2etest.NewClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		n := 0
		for sc.Scan() {
			var a struct{ IDs []string }
			if json.Unmarshal(sc.Bytes(), &a) != nil {
				break
			}
			for _, id := range a.IDs {
				if id != fmt.Sprintf("s-%d", n) {
					t.Errorf("stream acknowledged %q where s-%d comes next", id, n)
				}
				n++
			}
			ack(a.IDs)
		}
		streamAcked <- n
	}()

	select {
	case <-reachKill:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d batched updates acknowledged in 60s", ackedBatch.Load())
	}
	h.Kill()
	wg.Wait()
	pw.CloseWithError(errors.New("hub killed"))
	nStream := <-streamAcked
	if nStream == 0 || nStream == streamMax {
		t.Fatalf("the stream had %d of %d updates acknowledged at the kill: the test proves nothing", nStream, streamMax)
	}
	mu.Lock()
	t.Logf("%d updates acknowledged before kill -9 (%d batched, %d streamed)", len(acked), ackedBatch.Load(), nStream)
	mu.Unlock()

	h = ssekit.Start(t, e2etest.HubSpec{Addr: h.Addr, Args: args})
	c := e2etest.NewClient(t)
	end := mustPublish(t, c, h.URL(), "kill", "end-marker", "end")
	s := e2etest.OpenStream(t, c, h.URL(), "topic=kill&lastEventID=earliest", "", 60*time.Second)
	replay := s.Until(t, end)
	replay = replay[:len(replay)-1]

	seen := map[string]bool{}
	inFlight := map[string]bool{} // publishers with a batch replayed without an acknowledgement
	perBatch := map[string]int{}  // replayed updates of each batch: all or none
	nextStream := 0
	for _, ev := range replay {
		if seen[ev.ID] {
			t.Fatalf("id %q replayed twice", ev.ID)
		}
		seen[ev.ID] = true
		switch {
		case strings.HasPrefix(ev.ID, "s-"):
			if ev.ID != fmt.Sprintf("s-%d", nextStream) {
				t.Fatalf("stream update %q replayed where s-%d comes next", ev.ID, nextStream)
			}
			nextStream++
		case strings.HasPrefix(ev.ID, "b"):
			perBatch[ev.ID[:strings.LastIndexByte(ev.ID, '-')]]++
			if !acked[ev.ID] {
				g, _, _ := strings.Cut(ev.ID, "-")
				inFlight[g] = true
			}
		default:
			t.Fatalf("replayed %q, which nobody sent", ev.ID)
		}
	}
	for id := range acked {
		if !seen[id] {
			t.Fatalf("acknowledged %q is lost", id)
		}
	}
	for b, n := range perBatch {
		if n != batchSize {
			t.Fatalf("batch %s: %d of its %d updates replayed; want all or none", b, n, batchSize)
		}
	}
	if nextStream < nStream {
		t.Fatalf("the stream had %d updates acknowledged, %d replayed", nStream, nextStream)
	}
	t.Logf("replayed %d: the acknowledged, %d streamed in flight, in-flight batches of %d publishers", len(replay), nextStream-nStream, len(inFlight))
}

// postBatch posts an NDJSON batch and returns the ids the hub acknowledged.
func postBatch(t *testing.T, c *http.Client, batchURL, tok, body string) ([]string, error) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, batchURL, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("batch: %s %s", resp.Status, b)
	}
	var a struct{ IDs []string }
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	return a.IDs, nil
}
