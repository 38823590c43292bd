package natsoutbox_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/store/natsjs"
	"github.com/ssekit/sse/store/natsjs/natsnode"
	"github.com/ssekit/sse/webhook/natsoutbox"
	"github.com/ssekit/sse/webhook/outboxtest"
)

// startCluster runs a 3-node embedded NATS cluster and waits for its
// JetStream.
func startCluster(t testing.TB) []string {
	t.Helper()
	start := func(cfg natsnode.Config) *natsnode.Node {
		cfg.Listen, cfg.StoreDir, cfg.ClusterListen = "127.0.0.1:0", t.TempDir(), "127.0.0.1:0"
		n, err := natsnode.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Shutdown)
		return n
	}
	first := start(natsnode.Config{Name: "n0"})
	nodes := []*natsnode.Node{first}
	for i := 1; i < 3; i++ {
		nodes = append(nodes, start(natsnode.Config{Name: fmt.Sprint("n", i), Peers: []string{first.ClusterAddr()}}))
	}
	poll.Until(t, "the cluster's JetStream", time.Minute, func() bool {
		for _, n := range nodes {
			if !n.JetStreamReady() {
				return false
			}
		}
		return true
	})
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.ClientURL())
	}
	return urls
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9]`)

// newNode makes hub node i on NATS server i of urls, its stream and
// buckets named after the test, with 3 replicas; killing a node closes
// its connection.
func newNode(urls []string) outboxtest.NewNode {
	return func(t testing.TB, i int, opts outboxtest.Options) outboxtest.Node {
		name := unsafe.ReplaceAllString(t.Name(), "_")
		st, err := natsjs.Open(t.Context(), natsjs.Config{URL: urls[i%len(urls)], Stream: name, Replicas: 3, HistorySize: opts.HistorySize})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close(context.Background()) })
		c, err := natsoutbox.New(t.Context(), st.JetStream(), natsoutbox.Config{Name: name + "_webhooks", Replicas: 3, TTL: opts.TTL})
		if err != nil {
			t.Fatal(err)
		}
		return outboxtest.Node{Store: st, Cluster: c, Kill: func() { st.Close(context.Background()) }}
	}
}

// TestCluster: the suite over a 3-node embedded NATS cluster.
func TestCluster(t *testing.T) { outboxtest.Run(t, newNode(startCluster(t))) }

func BenchmarkPublish(b *testing.B) { outboxtest.BenchPublish(b, newNode(startCluster(b))) }

// BenchmarkTakeover is with the default lease (10 s).
func BenchmarkTakeover(b *testing.B) {
	outboxtest.BenchTakeover(b, newNode(startCluster(b)), natsoutbox.DefaultTTL)
}
