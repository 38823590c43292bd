package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/hub/hubtest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/store/natsjs"
	"github.com/ssekit/sse/store/natsjs/natsnode"
)

// waitTimeout bounds every wait for the cluster or for a delivery.
const waitTimeout = 30 * time.Second

// startNode runs one embedded NATS server with JetStream on 127.0.0.1.
func startNode(t testing.TB, cfg natsnode.Config) *natsnode.Node {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	n, err := natsnode.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	return n
}

// startCluster runs a 3-node cluster, routes on random 127.0.0.1 ports,
// and waits until JetStream has a meta leader every node is current with.
func startCluster(t testing.TB) []*natsnode.Node {
	t.Helper()
	first := startNode(t, natsnode.Config{Name: "n0", ClusterListen: "127.0.0.1:0"})
	nodes := []*natsnode.Node{first}
	for i := 1; i < 3; i++ {
		nodes = append(nodes, startNode(t, natsnode.Config{
			Name: fmt.Sprintf("n%d", i), ClusterListen: "127.0.0.1:0", Peers: []string{first.ClusterAddr()},
		}))
	}
	poll.Until(t, "the cluster's JetStream", waitTimeout, func() bool {
		for _, n := range nodes {
			if !n.JetStreamReady() {
				return false
			}
		}
		return true
	})
	return nodes
}

// streams numbers the streams the tests create, so every store opened on
// a shared server starts empty.
var streams atomic.Int64

func openStore(t testing.TB, url string, cfg natsjs.Config) *natsjs.Store {
	t.Helper()
	cfg.URL = url
	if cfg.Stream == "" {
		cfg.Stream = fmt.Sprintf("T%d", streams.Add(1))
	}
	s, err := natsjs.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestConformanceSingleNode(t *testing.T) {
	n := startNode(t, natsnode.Config{})
	hubtest.RunStoreTests(t, func(t *testing.T) hub.Store {
		return openStore(t, n.ClientURL(), natsjs.Config{})
	})
}

func TestConformanceCluster(t *testing.T) {
	nodes := startCluster(t)
	i := 0
	hubtest.RunStoreTests(t, func(t *testing.T) hub.Store {
		i++
		return openStore(t, nodes[i%3].ClientURL(), natsjs.Config{Replicas: 3})
	})
}

// recorder collects what a Subscribe callback receives.
type recorder struct {
	mu  sync.Mutex
	ids []string
	seq []uint64
}

func (r *recorder) fn(u *hub.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, u.ID)
	r.seq = append(r.seq, u.Seq)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

func (r *recorder) snapshot() ([]string, []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...), append([]uint64(nil), r.seq...)
}

// TestCrossNode appends on three stores, each connected to another node
// of the cluster, and checks that every store delivers every update in the
// same order with the same Seq, and that After on any store resumes from
// an id appended on another.
func TestCrossNode(t *testing.T) {
	nodes := startCluster(t)
	stream := fmt.Sprintf("X%d", streams.Add(1))
	var stores []*natsjs.Store
	var recs []*recorder
	for _, n := range nodes {
		s := openStore(t, n.ClientURL(), natsjs.Config{Stream: stream, Replicas: 3})
		r := &recorder{}
		stop, err := s.Subscribe(context.Background(), r.fn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		stores = append(stores, s)
		recs = append(recs, r)
	}
	const each = 50
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			for j := range each {
				u := &hub.Update{ID: fmt.Sprintf("n%d-%d", i, j), Topics: []string{"t"}, Data: "x"}
				if err := s.Append(context.Background(), u); err != nil {
					t.Errorf("Append on node %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, r := range recs {
		poll.Until(t, fmt.Sprintf("node %d to deliver %d updates", i, 3*each), waitTimeout, func() bool { return r.len() >= 3*each })
	}
	ids0, seq0 := recs[0].snapshot()
	for i, r := range recs[1:] {
		ids, seq := r.snapshot()
		if strings.Join(ids, ",") != strings.Join(ids0, ",") || fmt.Sprint(seq) != fmt.Sprint(seq0) {
			t.Errorf("node %d delivered another order than node 0:\n got %v %v\nwant %v %v", i+1, ids, seq, ids0, seq0)
		}
	}
	for i := 1; i < len(seq0); i++ {
		if seq0[i] <= seq0[i-1] {
			t.Errorf("Seq %d delivered after %d; want increasing", seq0[i], seq0[i-1])
		}
	}
	// Resume on every node from an id appended on node 0.
	mid := len(ids0) / 2
	for i, s := range stores {
		var got []string
		anchor, found, err := hubtest.AfterAll(context.Background(), s, ids0[mid], 0, func(u *hub.Update) bool {
			got = append(got, u.ID)
			return true
		})
		if err != nil || !found || anchor != seq0[mid] {
			t.Fatalf("node %d: After(%q): anchor %d, found %v, err %v; want %d, true, nil", i, ids0[mid], anchor, found, err, seq0[mid])
		}
		if strings.Join(got, ",") != strings.Join(ids0[mid+1:], ",") {
			t.Errorf("node %d: After(%q): got %v; want %v", i, ids0[mid], got, ids0[mid+1:])
		}
	}
	// A duplicate id is refused whichever node it comes through.
	err := stores[2].Append(context.Background(), &hub.Update{ID: "n0-0", Topics: []string{"t"}})
	if !errors.Is(err, hub.ErrDuplicateID) {
		t.Errorf("Append of an id appended on another node: got %v; want ErrDuplicateID", err)
	}
}

func TestRetention(t *testing.T) {
	n := startNode(t, natsnode.Config{})
	tests := []struct {
		name string
		cfg  natsjs.Config
		want int // updates retained of 20
	}{
		{"HistorySize", natsjs.Config{HistorySize: 5}, 5},
		{"MaxBytes", natsjs.Config{MaxBytes: 2000}, -1}, // fewer than 20, at least 1
		{"NoLimit", natsjs.Config{HistorySize: -1}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, n.ClientURL(), tt.cfg)
			for i := range 20 {
				u := &hub.Update{ID: fmt.Sprint("r", i), Topics: []string{"t"}, Data: strings.Repeat("x", 100)}
				if err := s.Append(context.Background(), u); err != nil {
					t.Fatal(err)
				}
			}
			var ids []string
			if _, _, err := hubtest.AfterAll(context.Background(), s, "", 0, func(u *hub.Update) bool {
				ids = append(ids, u.ID)
				return true
			}); err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want >= 0 && len(ids) != tt.want:
				t.Errorf("retained %d: %v; want %d", len(ids), ids, tt.want)
			case tt.want < 0 && (len(ids) == 0 || len(ids) >= 20):
				t.Errorf("retained %d; want between 1 and 19", len(ids))
			case len(ids) > 0 && ids[len(ids)-1] != "r19":
				t.Errorf("newest retained %q; want r19", ids[len(ids)-1])
			}
			// The oldest id, dropped, is not found: the whole history comes.
			_, found, err := hubtest.AfterAll(context.Background(), s, "r0", 0, func(*hub.Update) bool { return true })
			if err != nil || (found != (len(ids) == 20)) {
				t.Errorf("After(dropped r0): found %v, err %v", found, err)
			}
			// A dropped id may be appended again.
			if len(ids) < 20 {
				if err := s.Append(context.Background(), &hub.Update{ID: "r0", Topics: []string{"t"}}); err != nil {
					t.Errorf("Append of a dropped id: %v; want nil", err)
				}
			}
		})
	}
}

func TestMaxAge(t *testing.T) {
	n := startNode(t, natsnode.Config{})
	s := openStore(t, n.ClientURL(), natsjs.Config{MaxAge: time.Second})
	if err := s.Append(context.Background(), &hub.Update{ID: "old", Topics: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the update to expire", waitTimeout, func() bool {
		_, found, err := hubtest.AfterAll(context.Background(), s, "old", 0, func(*hub.Update) bool { return true })
		return err == nil && !found
	})
}

// TestUnavailableAndRecovery stops the NATS server under a store: Append
// fails at once with ErrStoreUnavailable, Healthy reports it, and both
// recover, with the consumer resuming, when a server is back on the same
// address and data directory.
func TestUnavailableAndRecovery(t *testing.T) {
	dir := t.TempDir()
	n, err := natsnode.Start(natsnode.Config{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	url := n.ClientURL()
	s := openStore(t, url, natsjs.Config{Stream: "RECOVER", PublishTimeout: 2 * time.Second})
	r := &recorder{}
	stop, err := s.Subscribe(context.Background(), r.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	if err := s.Append(ctx, &hub.Update{ID: "before", Topics: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Healthy(ctx); err != nil {
		t.Fatalf("Healthy with NATS up: %v", err)
	}
	n.Shutdown()

	poll.Until(t, "Append to fail with ErrStoreUnavailable", waitTimeout, func() bool {
		err := s.Append(ctx, &hub.Update{ID: "during", Topics: []string{"t"}})
		return errors.Is(err, hub.ErrStoreUnavailable)
	})
	if err := s.Healthy(ctx); !errors.Is(err, hub.ErrStoreUnavailable) {
		t.Errorf("Healthy with NATS down: got %v; want ErrStoreUnavailable", err)
	}

	host := strings.TrimPrefix(url, "nats://")
	n2 := startNode(t, natsnode.Config{Listen: host, StoreDir: dir})
	_ = n2
	poll.Until(t, "Healthy after NATS is back", waitTimeout, func() bool { return s.Healthy(ctx) == nil })
	poll.Until(t, "Append after NATS is back", waitTimeout, func() bool {
		return s.Append(ctx, &hub.Update{ID: "after", Topics: []string{"t"}}) == nil
	})
	poll.Until(t, "delivery of the update appended after recovery", waitTimeout, func() bool { return r.len() >= 2 })
	ids, _ := r.snapshot()
	if strings.Join(ids, ",") != "before,after" {
		t.Errorf("delivered %v; want [before after]", ids)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  natsjs.Config
	}{
		{"BadStreamName", natsjs.Config{Stream: "a.b"}},
		{"TooManyReplicas", natsjs.Config{Replicas: 7}},
		{"NegativeMaxBytes", natsjs.Config{MaxBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := natsjs.Open(context.Background(), tt.cfg)
			if !errors.Is(err, natsjs.ErrInvalidConfig) {
				t.Errorf("Open: got %v; want ErrInvalidConfig", err)
			}
		})
	}
	t.Run("Unreachable", func(t *testing.T) {
		_, err := natsjs.Open(context.Background(), natsjs.Config{URL: "nats://127.0.0.1:1", OpenTimeout: 300 * time.Millisecond})
		if !errors.Is(err, hub.ErrStoreUnavailable) {
			t.Errorf("Open of an unreachable server: got %v; want ErrStoreUnavailable", err)
		}
	})
}

func BenchmarkStore(b *testing.B) {
	n := startNode(b, natsnode.Config{StoreDir: filepath.Join(b.TempDir(), "js")})
	hubtest.BenchmarkStore(b, func(b *testing.B) hub.Store {
		return openStore(b, n.ClientURL(), natsjs.Config{HistorySize: -1})
	})
}

// TestAfterGaps deletes messages from the stream (the first, and some in
// the middle of a 256-message batch) and checks that After still gives
// every remaining update, in order, with the Seq Append gave it: replay
// reads bodies without headers and infers each sequence from the batch's
// end, so a batch with a gap must be read again with headers.
func TestAfterGaps(t *testing.T) {
	n := startNode(t, natsnode.Config{})
	s := openStore(t, n.ClientURL(), natsjs.Config{Stream: "GAPS", HistorySize: -1})
	ctx := context.Background()
	const total = 700
	seqs := make(map[string]uint64, total)
	var ids []string
	for i := range total {
		u := &hub.Update{ID: fmt.Sprint("g", i), Topics: []string{"t"}, Data: "d"}
		if err := s.Append(ctx, u); err != nil {
			t.Fatal(err)
		}
		seqs[u.ID] = u.Seq
		ids = append(ids, u.ID)
	}
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "GAPS")
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	for _, i := range []int{0, 1, 300, 301, 302, 600} {
		if err := st.DeleteMsg(ctx, seqs[ids[i]]); err != nil {
			t.Fatal(err)
		}
		deleted[ids[i]] = true
	}
	var want []string
	for _, id := range ids {
		if !deleted[id] {
			want = append(want, id)
		}
	}

	tests := []struct {
		name  string
		after string
		found bool
		want  []string
	}{
		{"Whole", "", true, want},
		{"Deleted", ids[0], false, want},
		{"BeforeGap", ids[250], true, want[slices.Index(want, ids[250])+1:]},
		{"AtGapEdge", ids[299], true, want[slices.Index(want, ids[299])+1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			_, found, err := hubtest.AfterAll(ctx, s, tt.after, 0, func(u *hub.Update) bool {
				if u.Seq != seqs[u.ID] {
					t.Errorf("%s: Seq %d; want %d", u.ID, u.Seq, seqs[u.ID])
				}
				got = append(got, u.ID)
				return true
			})
			if err != nil || found != tt.found {
				t.Fatalf("After(%q): found %v, err %v; want %v, nil", tt.after, found, err, tt.found)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("After(%q): got %d updates; want %d", tt.after, len(got), len(tt.want))
			}
		})
	}
}

func TestRetentionRulesConformance(t *testing.T) {
	n := startNode(t, natsnode.Config{})
	hubtest.RunRetentionTests(t, func(t *testing.T) hub.Store {
		return openStore(t, n.ClientURL(), natsjs.Config{})
	})
}
