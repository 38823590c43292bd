package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/store/natsjs"
	"github.com/ssekit/sse/store/natsjs/natsnode"
)

// batchOf makes n updates with ids prefix-0 … prefix-(n-1).
func batchOf(prefix string, n int) []*hub.Update {
	us := make([]*hub.Update, n)
	for i := range us {
		us[i] = &hub.Update{ID: fmt.Sprint(prefix, "-", i), Topics: []string{"t"}, Data: "x"}
	}
	return us
}

// storedIDs replays the whole stream through s and returns the ids in it.
func storedIDs(t *testing.T, s *natsjs.Store) map[string]uint64 {
	t.Helper()
	ids := map[string]uint64{}
	cur := hub.Cursor{}
	for {
		p, err := s.After(context.Background(), cur, 1<<20)
		if err != nil {
			t.Fatalf("After: %v", err)
		}
		for _, u := range p.Updates {
			ids[u.ID] = u.Seq
		}
		if p.End {
			return ids
		}
		cur = hub.Cursor{Seq: p.Next}
	}
}

// streamMsgs is the stream's message count as its leader knows it.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Msgs
}

// TestBatchRefusedOnServer makes the server refuse one message in the
// middle of an atomic batch: its id is already stored, which only the
// stream's Nats-Expected-Last-Subject-Sequence check finds (the store
// looks nothing up before publishing). The batch must leave nothing.
func TestBatchRefusedOnServer(t *testing.T) {
	n := startNode(t, natsnode.Config{})
	s := openStore(t, n.ClientURL(), natsjs.Config{})
	if err := s.Append(context.Background(), &hub.Update{ID: "b-50", Topics: []string{"t"}, Data: "first"}); err != nil {
		t.Fatal(err)
	}
	err := s.AppendBatch(context.Background(), batchOf("b", 100))
	var be *hub.BatchError
	if !errors.As(err, &be) || be.Index != 50 || !errors.Is(err, hub.ErrDuplicateID) {
		t.Fatalf("a batch with a stored id at 50: %v; want a *hub.BatchError at 50 wrapping ErrDuplicateID", err)
	}
	if ids := storedIDs(t, s); len(ids) != 1 {
		t.Fatalf("after the refused batch the stream holds %d updates; want 1", len(ids))
	}
	// The same batch without the taken id is stored whole, at
	// consecutive sequences after the first update.
	us := batchOf("c", 100)
	if err := s.AppendBatch(context.Background(), us); err != nil {
		t.Fatal(err)
	}
	for i, u := range us {
		if u.Seq != uint64(2+i) || u.Time.IsZero() {
			t.Fatalf("update %d: Seq %d, Time %v; want Seq %d and a time", i, u.Seq, u.Time, 2+i)
		}
	}
	ids := storedIDs(t, s)
	for _, u := range us {
		if ids[u.ID] != u.Seq {
			t.Fatalf("%s replayed at %d; acknowledged at %d", u.ID, ids[u.ID], u.Seq)
		}
	}
}

// TestBatchLimits: a batch the store cannot commit atomically is refused
// whole, with a reason, before or by the server.
func TestBatchLimits(t *testing.T) {
	n := startNode(t, natsnode.Config{})
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	t.Run("over MaxBatch", func(t *testing.T) {
		s := openStore(t, n.ClientURL(), natsjs.Config{MaxBatch: 10})
		err := s.AppendBatch(context.Background(), batchOf("m", 11))
		if !errors.Is(err, hub.ErrInvalidUpdate) || !strings.Contains(err.Error(), "at most 10") {
			t.Fatalf("a batch of 11 with MaxBatch 10: %v; want ErrInvalidUpdate naming the limit", err)
		}
		if err := s.AppendBatch(context.Background(), batchOf("m", 10)); err != nil {
			t.Fatalf("a batch of 10 with MaxBatch 10: %v", err)
		}
	})
	t.Run("over the server's max_batch_size", func(t *testing.T) {
		stream := fmt.Sprintf("T%d", streams.Add(1))
		s := openStore(t, n.ClientURL(), natsjs.Config{Stream: stream, MaxBatch: 5000})
		err := s.AppendBatch(context.Background(), batchOf("l", 1001))
		if !errors.Is(err, hub.ErrInvalidUpdate) || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("a batch of 1,001 (server limit 1,000): %v; want ErrInvalidUpdate saying too large", err)
		}
		if got := streamMsgs(t, js, stream); got != 0 {
			t.Fatalf("the refused batch left %d messages", got)
		}
	})
	t.Run("an update over max_payload", func(t *testing.T) {
		stream := fmt.Sprintf("T%d", streams.Add(1))
		s := openStore(t, n.ClientURL(), natsjs.Config{Stream: stream})
		us := batchOf("p", 10)
		us[7].Data = strings.Repeat("x", int(nc.MaxPayload()))
		err := s.AppendBatch(context.Background(), us)
		var be *hub.BatchError
		if !errors.As(err, &be) || be.Index != 7 || !errors.Is(err, hub.ErrInvalidUpdate) {
			t.Fatalf("a batch with update 7 over max_payload: %v; want a *hub.BatchError at 7 wrapping ErrInvalidUpdate", err)
		}
		if got := streamMsgs(t, js, stream); got != 0 {
			t.Fatalf("the refused batch left %d messages", got)
		}
	})
}

// TestOpenEnablesAtomicPublish opens the store on a stream created
// without allow_atomic (as every earlier version did): Open turns it on,
// keeping what the stream holds.
func TestOpenEnablesAtomicPublish(t *testing.T) {
	n := startNode(t, natsnode.Config{})
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream := fmt.Sprintf("T%d", streams.Add(1))
	old, err := natsjs.Open(context.Background(), natsjs.Config{URL: n.ClientURL(), Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Append(context.Background(), &hub.Update{ID: "old", Topics: []string{"t"}, Data: "x"}); err != nil {
		t.Fatal(err)
	}
	old.Close(context.Background())
	st, _ := js.Stream(context.Background(), stream)
	cfg := st.CachedInfo().Config
	cfg.AllowAtomicPublish = false
	if _, err := js.UpdateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}

	s := openStore(t, n.ClientURL(), natsjs.Config{Stream: stream})
	st, _ = js.Stream(context.Background(), stream)
	if !st.CachedInfo().Config.AllowAtomicPublish {
		t.Fatal("Open left the stream without allow_atomic")
	}
	if err := s.AppendBatch(context.Background(), batchOf("n", 3)); err != nil {
		t.Fatal(err)
	}
	if ids := storedIDs(t, s); len(ids) != 4 || ids["old"] != 1 {
		t.Fatalf("stream after Open and a batch: %v; want old at 1 and 3 more", ids)
	}
}

// TestBatchNodeKilled publishes batches of 100 from two goroutines while
// the stream's leader (of three nodes, replicas 3) is killed (SIGKILL)
// and started again on its data: a batch is stored whole or not at all,
// every acknowledged batch whole, on every node once it caught up.
func TestBatchNodeKilled(t *testing.T) {
	first := startProcNode(t, nodeSpec{Name: "b0"})
	nodes := []*procNode{first}
	for i := 1; i < 3; i++ {
		nodes = append(nodes, startProcNode(t, nodeSpec{Name: fmt.Sprint("b", i), Peers: []string{first.cluster}}))
	}
	stream := fmt.Sprintf("B%d", streams.Add(1))
	cfg := natsjs.Config{Stream: stream, Replicas: 3, PublishTimeout: 10 * time.Second}
	pub := openStore(t, nodes[0].url+","+nodes[1].url+","+nodes[2].url, cfg)
	admin, err := nats.Connect(nodes[0].url + "," + nodes[1].url + "," + nodes[2].url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, _ := jetstream.New(admin)
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	leader := st.CachedInfo().Cluster.Leader
	victim := -1
	for i, n := range nodes {
		if n.name == leader {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("stream leader %q is none of the nodes", leader)
	}

	const batches, size = 40, 100
	var (
		mu    sync.Mutex
		acked = map[int]bool{}
		wg    sync.WaitGroup
		next  = make(chan int)
	)
	for range 2 {
		wg.Go(func() {
			for b := range next {
				err := pub.AppendBatch(context.Background(), batchOf(fmt.Sprint("k", b), size))
				if err == nil {
					mu.Lock()
					acked[b] = true
					mu.Unlock()
				} else if !errors.Is(err, hub.ErrStoreUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("batch %d: %v", b, err)
				}
			}
		})
	}
	for b := range batches {
		if b == batches/4 {
			nodes[victim].Kill()
			t.Logf("killed the stream leader %s after %d batches sent", leader, b)
		}
		next <- b
	}
	close(next)
	wg.Wait()

	back := startProcNode(t, nodeSpec{Name: leader, StoreDir: nodes[victim].storeDir, Peers: []string{nodes[(victim+1)%3].cluster}})
	// The restarted node must have caught up with every acknowledged
	// batch before its replay is checked: poll until it has them.
	check := openStore(t, back.url, cfg)
	var ids map[string]uint64
	poll.Until(t, "the restarted node to hold every acknowledged batch", 2*waitTimeout, func() bool {
		ids = storedIDs(t, check)
		mu.Lock()
		defer mu.Unlock()
		for b := range acked {
			if _, ok := ids[fmt.Sprint("k", b, "-0")]; !ok {
				return false
			}
		}
		return true
	})
	stored := 0
	for b := range batches {
		n := 0
		for i := range size {
			if _, ok := ids[fmt.Sprint("k", b, "-", i)]; ok {
				n++
			}
		}
		switch {
		case n != 0 && n != size:
			t.Errorf("batch %d: %d of its %d updates stored; want all or none", b, n, size)
		case acked[b] && n != size:
			t.Errorf("batch %d acknowledged but %d of %d updates stored", b, n, size)
		}
		if n == size {
			stored++
		}
	}
	t.Logf("%d batches acknowledged, %d stored, of %d", len(acked), stored, batches)
	if len(acked) == 0 {
		t.Error("no batch was acknowledged")
	}
}

// BenchmarkAppendBatch appends batches of 100 from 8 goroutines per
// GOMAXPROCS on one node: CPU per update is the client's and the
// embedded server's together.
func BenchmarkAppendBatch(b *testing.B) {
	n := startNode(b, natsnode.Config{})
	s := openStore(b, n.ClientURL(), natsjs.Config{HistorySize: -1})
	var next sync.Mutex
	k := 0
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			next.Lock()
			k++
			prefix := fmt.Sprint("bb", k)
			next.Unlock()
			if err := s.AppendBatch(context.Background(), batchOf(prefix, 100)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(100*b.N), "ns/update")
}
