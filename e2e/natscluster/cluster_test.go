// Package natscluster_test runs hub clusters on NATS JetStream as real
// processes over real sockets, as an operator would run them behind a load
// balancer, and breaks them:
//
//   - three "ssekit serve --cluster" processes (each with its embedded NATS
//     server, the stream on 3 replicas): publish on any node, deliver on
//     all, resume on another node; one is killed with SIGKILL in the middle
//     of the traffic, hub and NATS node at once, and its subscribers move
//     to the others with their Last-Event-ID;
//   - three "ssekit serve --store nats://…" processes on a 3-node NATS
//     cluster run in the test process: a NATS node is stopped in the middle
//     of the traffic, and no acknowledged publish is lost; with every NATS
//     node stopped, /readyz and publishes answer 503, and both recover by
//     themselves when NATS is back.
//
// Every fault test counts, per subscriber, what was published (acknowledged
// with 200, or 409 for a retry of an attempt that had in fact been stored)
// against what it received: zero loss, zero duplicates, publish order kept
// per topic (internal/e2etest). TestMain builds the binary once.
package natscluster_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/store/natsjs"
	"github.com/ssekit/sse/store/natsjs/natsnode"
)

// testSecret is the HS256 key the hubs verify tokens with.
const testSecret = "e2e-nats-0123456789abcdef0123456789abcdef"

// clusterSecret is the --cluster-secret every --cluster node shares: the
// embedded NATS servers' client and route passwords derive from it.
const clusterSecret = "e2e-nats-cluster-0123456789abcdef0123456789"

// ssekit is the binary TestMain built: set once before any test runs.
var ssekit e2etest.Binary

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main(m, "e2e/natscluster", &ssekit))
}

// launch starts "ssekit serve --addr addr args…" without waiting for it.
func launch(t *testing.T, addr string, args ...string) *e2etest.Hub {
	t.Helper()
	args = append([]string{"--jwt-key", testSecret, "--allow-anonymous",
		"--heartbeat", "500ms", "--log-level", "debug"}, args...)
	return ssekit.Launch(t, e2etest.HubSpec{Addr: addr, Args: args})
}

// startClusterNodes runs three "ssekit serve --cluster" processes that
// form one NATS cluster, and waits until each is ready. A fresh cluster
// answers the stream's creation with errors natsjs.Open retries (no meta
// leader yet, no suitable peers for placement) until its nodes have met:
// a hub that exits meanwhile is a regression, not a flake. extra are
// more flags for every node.
func startClusterNodes(t *testing.T, extra ...string) []*e2etest.Hub {
	t.Helper()
	ports := e2etest.FreeAddrs(t, 9) // HTTP, NATS clients, routes
	peers := strings.Join(ports[6:9], ",")
	var nodes []*e2etest.Hub
	for i := range 3 {
		nodes = append(nodes, launch(t, ports[i], append([]string{"--cluster", "--nats-listen", ports[3+i],
			"--cluster-listen", ports[6+i], "--cluster-peers", peers, "--cluster-secret", clusterSecret, "--data-dir", t.TempDir()}, extra...)...))
	}
	for _, nd := range nodes {
		nd.WaitListening(t)
		nd.WaitStatus(t, "/readyz", http.StatusOK)
	}
	return nodes
}

// startNATSCluster runs a 3-node NATS cluster with JetStream in the test
// process, on fixed ports so a stopped node can come back on its own.
func startNATSCluster(t *testing.T) (nodes []*natsnode.Node, cfgs []natsnode.Config) {
	t.Helper()
	ports := e2etest.FreeAddrs(t, 6)
	for i := range 3 {
		cfgs = append(cfgs, natsnode.Config{
			Name: fmt.Sprint("nats", i), Listen: ports[i], StoreDir: t.TempDir(),
			ClusterListen: ports[3+i], Peers: ports[3:6],
		})
	}
	for _, c := range cfgs {
		nodes = append(nodes, startNATS(t, c))
	}
	return nodes, cfgs
}

func startNATS(t *testing.T, cfg natsnode.Config) *natsnode.Node {
	t.Helper()
	n, err := natsnode.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	return n
}

// checkDelivery waits until every subscriber has received every id
// acknowledged for its topic, then checks it received exactly those, once
// each, in publish order.
func checkDelivery(t *testing.T, p *e2etest.Publisher, subs []*e2etest.Subscriber) {
	t.Helper()
	for i, s := range subs {
		want := p.Acked(s.Topic())
		got := s.WaitIDs(t, want)
		t.Logf("subscriber %d (%s): published %d, received %d, streams on %v", i, s.Topic(), len(want), len(got), s.Streams())
		e2etest.CheckExactly(t, fmt.Sprintf("subscriber %d (%s)", i, s.Topic()), got, want)
	}
}

// TestClusterPublishAnywhere publishes on each of three --cluster nodes
// and checks every node delivers everything, and that a subscriber
// resuming on another node with its Last-Event-ID gets exactly the rest.
func TestClusterPublishAnywhere(t *testing.T) {
	nodes := startClusterNodes(t)
	var subs []*e2etest.Subscriber
	for i := range nodes {
		subs = append(subs, e2etest.Subscribe(t, nodes[i:i+1], 0, "news", ""))
	}
	p := e2etest.NewPublisher(nodes, e2etest.PublisherToken(t, testSecret))
	for i := range 30 {
		p.MustPublish(t, "news", fmt.Sprint("a-", i))
	}
	checkDelivery(t, p, subs)

	// Resume on node 2 after an id published through node 0.
	st := e2etest.OpenStream(t, nodes[2].Client, nodes[2].URL(), "topic=news", "a-26", e2etest.Timeout)
	var got []string
	for len(got) < 3 {
		got = append(got, st.Next(t).ID)
	}
	if want := []string{"a-27", "a-28", "a-29"}; !slices.Equal(got, want) {
		t.Errorf("resumed after a-26 on another node: got %v; want %v", got, want)
	}
}

// TestClusterKillHubNode kills one of three --cluster nodes (its hub and
// its NATS server) with SIGKILL while updates flow; its subscribers move
// to the other nodes with their Last-Event-ID.
func TestClusterKillHubNode(t *testing.T) {
	nodes := startClusterNodes(t)
	topics := []string{"t0", "t1", "t2"}
	var subs []*e2etest.Subscriber
	for i := range 9 { // three per node, each node with every topic
		subs = append(subs, e2etest.Subscribe(t, nodes, i%3, topics[(i/3)%3], ""))
	}
	p := e2etest.NewPublisher(nodes, e2etest.PublisherToken(t, testSecret))
	const total = 300
	for i := range total {
		if i == total/3 {
			nodes[2].Kill()
			t.Logf("killed node %s after %d publishes", nodes[2].Addr, i)
		}
		p.MustPublish(t, topics[i%3], fmt.Sprint("k-", i))
	}
	checkDelivery(t, p, subs)
	for i, s := range subs {
		moves := s.Streams()
		if moves[0] == nodes[2].Addr && len(moves) < 2 {
			t.Errorf("subscriber %d on the killed node never resumed elsewhere: streams on %v", i, moves)
		}
	}
	failures := p.Failures()
	t.Logf("%d publish attempts retried; first: %v", len(failures), failures[:min(3, len(failures))])
}

// TestStopNATSNode runs three hubs on an external 3-node NATS cluster
// (replicas 3) and stops the NATS node that leads the stream while
// updates flow: the stream elects another leader, hubs connected to the
// stopped node reconnect to another, publishes meanwhile answer 503 and
// are retried, and no acknowledged publish is lost. (The NATS nodes run in
// the test process, so "stopped" is a server shutdown, not a SIGKILL;
// TestClusterKillHubNode kills a NATS node with SIGKILL along with its
// hub.)
func TestStopNATSNode(t *testing.T) {
	servers, _ := startNATSCluster(t)
	var urls []string
	for _, n := range servers {
		urls = append(urls, n.ClientURL())
	}
	ports := e2etest.FreeAddrs(t, 3)
	var nodes []*e2etest.Hub
	for i := range 3 {
		// Each hub lists the servers in another order (the client also
		// shuffles them), so the hubs spread over the NATS nodes.
		rot := append(slices.Clone(urls[i:]), urls[:i]...)
		nodes = append(nodes, launch(t, ports[i], "--store", strings.Join(rot, ","), "--nats-replicas", "3",
			"--data-dir", t.TempDir()))
	}
	for _, nd := range nodes {
		nd.WaitListening(t)
		nd.WaitStatus(t, "/readyz", http.StatusOK)
	}
	topics := []string{"t0", "t1", "t2"}
	var subs []*e2etest.Subscriber
	for i := range 6 {
		subs = append(subs, e2etest.Subscribe(t, nodes, i%3, topics[i%3], ""))
	}
	p := e2etest.NewPublisher(nodes, e2etest.PublisherToken(t, testSecret))
	const total = 300
	for i := range total {
		if i == total/3 {
			leader := streamLeader(t, urls[0])
			for _, n := range servers {
				if n.Name() == leader {
					n.Shutdown()
				}
			}
			t.Logf("stopped NATS node %s, the stream's leader, after %d publishes", leader, i)
		}
		p.MustPublish(t, topics[i%3], fmt.Sprint("n-", i))
	}
	checkDelivery(t, p, subs)
}

// streamLeader returns the name of the NATS server leading the hub's
// stream.
func streamLeader(t *testing.T, url string) string {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2etest.Timeout)
	defer cancel()
	st, err := js.Stream(ctx, natsjs.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if c := st.CachedInfo().Cluster; c != nil && c.Leader != "" {
		return c.Leader
	}
	t.Fatal("the stream has no leader")
	return ""
}

// TestNATSDownAndBack stops every NATS node under a hub: /readyz and
// publishes answer 503 with Retry-After; when NATS is back (same ports
// and data) both recover by themselves and the stream goes on.
func TestNATSDownAndBack(t *testing.T) {
	servers, cfgs := startNATSCluster(t)
	var urls []string
	for _, n := range servers {
		urls = append(urls, n.ClientURL())
	}
	nd := launch(t, e2etest.FreeAddrs(t, 1)[0], "--store", strings.Join(urls, ","), "--nats-replicas", "3", "--data-dir", t.TempDir())
	nd.WaitListening(t)
	nd.WaitStatus(t, "/readyz", http.StatusOK)
	sub := e2etest.Subscribe(t, []*e2etest.Hub{nd}, 0, "t", "")
	p := e2etest.NewPublisher([]*e2etest.Hub{nd}, e2etest.PublisherToken(t, testSecret))
	p.MustPublish(t, "t", "before")

	for _, n := range servers {
		n.Shutdown()
	}
	nd.WaitStatus(t, "/readyz", http.StatusServiceUnavailable)
	code, answer := nd.PublishID(p.Token(), "t", "during")
	if code != http.StatusServiceUnavailable || !strings.Contains(answer, "Retry-After=1") {
		t.Errorf("publish with NATS down: %d %s; want 503 with Retry-After", code, answer)
	}

	for _, c := range cfgs {
		startNATS(t, c)
	}
	nd.WaitStatus(t, "/readyz", http.StatusOK)
	for i := range 5 {
		p.MustPublish(t, "t", "after-"+strconv.Itoa(i))
	}
	checkDelivery(t, p, []*e2etest.Subscriber{sub})
}
