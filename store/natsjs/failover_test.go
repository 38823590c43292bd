package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/store/natsjs"
	"github.com/ssekit/sse/store/natsjs/natsnode"
)

// consumerNodes returns, for every consumer of the stream, the name of the
// NATS server it runs on ("" while it has no leader).
func consumerNodes(t *testing.T, js jetstream.JetStream, stream string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	l := st.ListConsumers(ctx)
	for ci := range l.Info() {
		out[ci.Name] = ""
		if ci.Cluster != nil {
			out[ci.Name] = ci.Cluster.Leader
		}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConsumerNodeStopped stops the NATS node that runs a store's
// consumer, while the store stays connected to another node and updates
// keep coming through a third: the store's callbacks must get every
// acknowledged update, once, in Seq order. (A node of a --cluster hub
// killed with its hub takes the consumers other hubs had placed on it.)
func TestConsumerNodeStopped(t *testing.T) {
	nodes := startCluster(t)
	stream := fmt.Sprintf("K%d", streams.Add(1))
	admin, err := nats.Connect(nodes[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	cfg := natsjs.Config{Stream: stream, Replicas: 3}

	// Open the subscribing store until its consumer lands on another node
	// than the one it is connected to (placement is random).
	var (
		sub           *natsjs.Store
		subAt, consAt int
		rec           = &recorder{}
	)
	for attempt := 0; sub == nil; attempt++ {
		if attempt == 12 {
			t.Fatal("the store's consumer was always placed on its own node")
		}
		at := attempt % 3
		s, err := natsjs.Open(context.Background(), natsjs.Config{URL: nodes[at].ClientURL(), Stream: stream, Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		before := map[string]string{}
		if attempt > 0 {
			before = consumerNodes(t, js, stream)
		}
		var mine string
		poll.Until(t, "the new store's consumer to have a leader", waitTimeout, func() bool {
			for name, leader := range consumerNodes(t, js, stream) {
				if _, old := before[name]; !old || attempt == 0 {
					if leader != "" {
						mine = leader
						return true
					}
				}
			}
			return false
		})
		if mine == nodes[at].Name() {
			s.Close(context.Background())
			continue
		}
		sub, subAt = s, at
		consAt = slices.IndexFunc(nodes, func(n *natsnode.Node) bool { return n.Name() == mine })
	}
	t.Cleanup(func() { sub.Close(context.Background()) })
	stop, err := sub.Subscribe(context.Background(), rec.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	pubAt := 3 - subAt - consAt
	pub := openStore(t, nodes[pubAt].ClientURL(), cfg)
	t.Logf("store on %s, its consumer on %s, publisher on %s", nodes[subAt].Name(), nodes[consAt].Name(), nodes[pubAt].Name())

	var acked []string
	const total = 300
	for i := range total {
		if i == total/3 {
			nodes[consAt].Shutdown()
		}
		id := fmt.Sprint("k-", i)
		poll.Until(t, "Append "+id, waitTimeout, func() bool {
			err := pub.Append(context.Background(), &hub.Update{ID: id, Topics: []string{"t"}, Data: "x"})
			if err != nil && !errors.Is(err, hub.ErrDuplicateID) {
				if !errors.Is(err, hub.ErrStoreUnavailable) {
					t.Fatalf("Append %s: %v", id, err)
				}
				return false
			}
			return true
		})
		acked = append(acked, id)
		time.Sleep(2 * time.Millisecond) // updates keep coming while the consumer is recreated
	}
	poll.Until(t, fmt.Sprintf("the store to deliver %d updates", total), 2*waitTimeout, func() bool {
		ids, _ := rec.snapshot()
		return len(ids) >= total && ids[len(ids)-1] == acked[len(acked)-1]
	})
	time.Sleep(200 * time.Millisecond) // a duplicate would come now
	ids, seqs := rec.snapshot()
	if !slices.Equal(ids, acked) {
		var missing []string
		for _, id := range acked {
			if !slices.Contains(ids, id) {
				missing = append(missing, id)
			}
		}
		t.Errorf("delivered %d updates, acknowledged %d; missing %v; delivered %v", len(ids), len(acked), missing, ids)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Errorf("Seq %d delivered after %d; want increasing", seqs[i], seqs[i-1])
		}
	}
}
