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
// per topic. TestMain builds the binary once.
package natscluster_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/store/natsjs"
	"github.com/ssekit/sse/store/natsjs/natsnode"
)

// testSecret is the HS256 key the hubs verify tokens with.
const testSecret = "e2e-nats-0123456789abcdef0123456789abcdef"

// waitTimeout bounds every wait; nothing is asserted about speed.
const waitTimeout = 40 * time.Second

// ssekitBin is the binary TestMain built: set once before any test runs.
var ssekitBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ssekit-e2e-nats-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/natscluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ssekitBin = filepath.Join(dir, "ssekit")
	build := exec.Command("go", "build", "-o", ssekitBin, "github.com/ssekit/sse/cmd/ssekit")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/natscluster: building ssekit:", err)
		return 1
	}
	return m.Run()
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// freePorts returns n 127.0.0.1 addresses whose ports were free a moment
// ago (held together, so they differ).
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// node is one "ssekit serve" process.
type node struct {
	addr   string
	out    *syncBuffer
	cmd    *exec.Cmd
	done   chan struct{}
	client *http.Client
}

func (n *node) url() string { return "http://" + n.addr + "/.well-known/mercure" }

// launch starts "ssekit serve --addr addr args…" without waiting for it.
func launch(t *testing.T, addr string, args ...string) *node {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	nd := &node{addr: addr, out: &syncBuffer{}, done: make(chan struct{}), client: &http.Client{Transport: tr}}
	args = append([]string{"serve", "--addr", addr, "--jwt-key", testSecret, "--allow-anonymous",
		"--heartbeat", "500ms", "--log-level", "debug"}, args...)
	nd.cmd = exec.Command(ssekitBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSEKIT_") || strings.HasPrefix(kv, "SSEKIT_REQUIRE_ALL=") {
			nd.cmd.Env = append(nd.cmd.Env, kv)
		}
	}
	nd.cmd.Stdout, nd.cmd.Stderr = nd.out, nd.out
	if err := nd.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		nd.cmd.Wait()
		close(nd.done)
	}()
	t.Cleanup(func() {
		nd.kill()
		if t.Failed() {
			t.Logf("node %s output:\n%s", addr, tail(nd.out.String(), 60))
		}
	})
	return nd
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// kill sends SIGKILL, as kill -9 does, and waits for the process to go.
func (n *node) kill() {
	n.cmd.Process.Kill()
	<-n.done
}

// waitListening waits for the node's "hub listening" log line.
func (n *node) waitListening(t *testing.T) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for !strings.Contains(n.out.String(), "hub listening") {
		select {
		case <-n.done:
			t.Fatalf("node %s exited before listening:\n%s", n.addr, n.out)
		case <-deadline:
			t.Fatalf("node %s not listening after %v:\n%s", n.addr, waitTimeout, n.out)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// startClusterNodes runs three "ssekit serve --cluster" processes that
// form one NATS cluster, and waits until each is ready.
func startClusterNodes(t *testing.T) []*node {
	t.Helper()
	ports := freePorts(t, 9) // HTTP, NATS clients, routes
	peers := strings.Join(ports[6:9], ",")
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, launch(t, ports[i], "--cluster", "--nats-listen", ports[3+i],
			"--cluster-listen", ports[6+i], "--cluster-peers", peers, "--data-dir", t.TempDir()))
	}
	for _, nd := range nodes {
		nd.waitListening(t)
		waitStatus(t, nd, "/readyz", http.StatusOK)
	}
	return nodes
}

// startNATSCluster runs a 3-node NATS cluster with JetStream in the test
// process, on fixed ports so a stopped node can come back on its own.
func startNATSCluster(t *testing.T) (nodes []*natsnode.Node, cfgs []natsnode.Config) {
	t.Helper()
	ports := freePorts(t, 6)
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

// status returns the status of GET path on the node (0 when it cannot be
// reached).
func status(nd *node, path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+nd.addr+path, nil)
	resp, err := nd.client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus waits until GET path on the node answers want.
func waitStatus(t *testing.T, nd *node, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := status(nd, path)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s on %s: %d after %v; want %d", path, nd.addr, got, waitTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publisherToken(t *testing.T) string {
	t.Helper()
	key, err := jwtauth.NewKey("HS256", []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwtauth.Sign(key, hub.Claims{Publish: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publish posts one update with the given id and returns the status (0
// when the request failed) and the answer.
func publish(nd *node, tok, topic, id string) (int, string) {
	form := url.Values{"topic": {topic}, "id": {id}, "data": {"data of " + id}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, nd.url(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := nd.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)) + " Retry-After=" + resp.Header.Get("Retry-After")
}

// publisher publishes ids in order, each to the next node, retrying an id
// on the following nodes until it is acknowledged. A 409 on a retry means
// an earlier attempt was stored without its answer arriving: that counts
// as acknowledged too (nobody else publishes these ids).
type publisher struct {
	t     *testing.T
	nodes []*node
	tok   string

	mu       sync.Mutex
	acked    map[string][]string // guarded by mu: topic → ids in publish order
	failures []string            // guarded by mu: answers that made it retry
	next     int                 // guarded by mu: the node of the next attempt
}

func newPublisher(t *testing.T, nodes []*node) *publisher {
	return &publisher{t: t, nodes: nodes, tok: publisherToken(t), acked: make(map[string][]string)}
}

// publish publishes id on topic, bounded to waitTimeout of attempts.
func (p *publisher) publish(topic, id string) {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for attempt := 0; ; attempt++ {
		p.mu.Lock()
		nd := p.nodes[p.next%len(p.nodes)]
		p.next++
		p.mu.Unlock()
		code, answer := publish(nd, p.tok, topic, id)
		if code == http.StatusOK || (code == http.StatusConflict && attempt > 0) {
			p.mu.Lock()
			p.acked[topic] = append(p.acked[topic], id)
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		p.failures = append(p.failures, fmt.Sprintf("%s on %s: %d %s", id, nd.addr, code, answer))
		p.mu.Unlock()
		if time.Now().After(deadline) {
			p.t.Fatalf("publishing %s: not acknowledged in %v; last answer %d %s", id, waitTimeout, code, answer)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *publisher) ackedFor(topic string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked[topic])
}

// subscriber reads one stream at a time; when a stream ends it reconnects
// to the next node with its Last-Event-ID, as EventSource does.
type subscriber struct {
	nodes  []*node
	topic  string
	cancel context.CancelFunc
	done   chan struct{}
	opened chan struct{} // closed once the first stream is open

	mu     sync.Mutex
	ids    []string // guarded by mu: every id received, in order
	lastID string   // guarded by mu
	moves  []string // guarded by mu: the nodes it resumed on
}

// subscribe starts a subscriber to topic on nodes[first].
func subscribe(t *testing.T, nodes []*node, first int, topic string) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{nodes: nodes, topic: topic, cancel: cancel, done: make(chan struct{}), opened: make(chan struct{})}
	go s.run(ctx, first)
	t.Cleanup(func() {
		s.cancel()
		<-s.done
	})
	select {
	case <-s.opened:
	case <-time.After(waitTimeout):
		t.Fatalf("subscriber to %s: no stream opened in %v", topic, waitTimeout)
	}
	return s
}

func (s *subscriber) run(ctx context.Context, i int) {
	defer close(s.done)
	var once sync.Once
	for attempt := 0; ctx.Err() == nil && attempt < 2000; attempt++ {
		s.stream(ctx, s.nodes[i%len(s.nodes)], func() { once.Do(func() { close(s.opened) }) })
		i++
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stream reads one stream from nd until it ends.
func (s *subscriber) stream(ctx context.Context, nd *node, opened func()) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, nd.url()+"?topic="+url.QueryEscape(s.topic), nil)
	s.mu.Lock()
	last := s.lastID
	s.mu.Unlock()
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := nd.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	s.mu.Lock()
	s.moves = append(s.moves, nd.addr)
	s.mu.Unlock()
	opened()
	d := sse.NewDecoder(bufio.NewReader(resp.Body))
	for {
		ev, err := d.Next()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.ids = append(s.ids, ev.ID)
		s.lastID = ev.ID
		s.mu.Unlock()
	}
}

func (s *subscriber) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// checkDelivery waits until every subscriber has received as many ids as
// were acknowledged for its topic, then checks it received exactly those,
// once each, in publish order.
func checkDelivery(t *testing.T, p *publisher, subs []*subscriber) {
	t.Helper()
	for i, s := range subs {
		want := p.ackedFor(s.topic)
		deadline := time.Now().Add(waitTimeout)
		for len(s.received()) < len(want) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		got := s.received()
		seen := make(map[string]int)
		var dups []string
		for _, id := range got {
			if seen[id]++; seen[id] == 2 {
				dups = append(dups, id)
			}
		}
		var lost []string
		for _, id := range want {
			if seen[id] == 0 {
				lost = append(lost, id)
			}
		}
		s.mu.Lock()
		moves := slices.Clone(s.moves)
		s.mu.Unlock()
		t.Logf("subscriber %d (%s): published %d, received %d, streams on %v", i, s.topic, len(want), len(got), moves)
		if len(lost) > 0 || len(dups) > 0 {
			t.Errorf("subscriber %d (%s): lost %d %v, duplicated %d %v", i, s.topic, len(lost), lost, len(dups), dups)
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("subscriber %d (%s): order differs from publish order:\n got %v\nwant %v", i, s.topic, got, want)
		}
	}
}

// TestClusterPublishAnywhere publishes on each of three --cluster nodes
// and checks every node delivers everything, and that a subscriber
// resuming on another node with its Last-Event-ID gets exactly the rest.
func TestClusterPublishAnywhere(t *testing.T) {
	nodes := startClusterNodes(t)
	var subs []*subscriber
	for i := range nodes {
		subs = append(subs, subscribe(t, nodes[i:i+1], 0, "news"))
	}
	p := newPublisher(t, nodes)
	for i := range 30 {
		p.publish("news", fmt.Sprint("a-", i))
	}
	checkDelivery(t, p, subs)

	// Resume on node 2 after an id published through node 0.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, nodes[2].url()+"?topic=news", nil)
	req.Header.Set("Last-Event-ID", "a-26")
	resp, err := nodes[2].client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	d := sse.NewDecoder(resp.Body)
	var got []string
	for len(got) < 3 {
		ev, err := d.Next()
		if err != nil {
			t.Fatalf("resumed stream: %v after %v", err, got)
		}
		got = append(got, ev.ID)
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
	var subs []*subscriber
	for i := range 9 { // three per node, each node with every topic
		subs = append(subs, subscribe(t, nodes, i%3, topics[(i/3)%3]))
	}
	p := newPublisher(t, nodes)
	const total = 300
	for i := range total {
		if i == total/3 {
			nodes[2].kill()
			t.Logf("killed node %s after %d publishes", nodes[2].addr, i)
		}
		p.publish(topics[i%3], fmt.Sprint("k-", i))
	}
	checkDelivery(t, p, subs)
	for i, s := range subs {
		s.mu.Lock()
		moves := slices.Clone(s.moves)
		s.mu.Unlock()
		if moves[0] == nodes[2].addr && len(moves) < 2 {
			t.Errorf("subscriber %d on the killed node never resumed elsewhere: streams on %v", i, moves)
		}
	}
	p.mu.Lock()
	t.Logf("%d publish attempts retried; first: %v", len(p.failures), p.failures[:min(3, len(p.failures))])
	p.mu.Unlock()
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
	ports := freePorts(t, 3)
	var nodes []*node
	for i := range 3 {
		// Each hub lists the servers in another order (the client also
		// shuffles them), so the hubs spread over the NATS nodes.
		rot := append(slices.Clone(urls[i:]), urls[:i]...)
		nodes = append(nodes, launch(t, ports[i], "--store", strings.Join(rot, ","), "--nats-replicas", "3",
			"--data-dir", t.TempDir()))
	}
	for _, nd := range nodes {
		nd.waitListening(t)
		waitStatus(t, nd, "/readyz", http.StatusOK)
	}
	topics := []string{"t0", "t1", "t2"}
	var subs []*subscriber
	for i := range 6 {
		subs = append(subs, subscribe(t, nodes, i%3, topics[i%3]))
	}
	p := newPublisher(t, nodes)
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
		p.publish(topics[i%3], fmt.Sprint("n-", i))
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
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
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
	nd := launch(t, freePorts(t, 1)[0], "--store", strings.Join(urls, ","), "--nats-replicas", "3", "--data-dir", t.TempDir())
	nd.waitListening(t)
	waitStatus(t, nd, "/readyz", http.StatusOK)
	sub := subscribe(t, []*node{nd}, 0, "t")
	p := newPublisher(t, []*node{nd})
	p.publish("t", "before")

	for _, n := range servers {
		n.Shutdown()
	}
	waitStatus(t, nd, "/readyz", http.StatusServiceUnavailable)
	code, answer := publish(nd, p.tok, "t", "during")
	if code != http.StatusServiceUnavailable || !strings.Contains(answer, "Retry-After=1") {
		t.Errorf("publish with NATS down: %d %s; want 503 with Retry-After", code, answer)
	}

	for _, c := range cfgs {
		startNATS(t, c)
	}
	waitStatus(t, nd, "/readyz", http.StatusOK)
	for i := range 5 {
		p.publish("t", "after-"+strconv.Itoa(i))
	}
	checkDelivery(t, p, []*subscriber{sub})
}
