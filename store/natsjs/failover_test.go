package natsjs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/store/natsjs"
	"github.com/ssekit/sse/store/natsjs/natsnode"
)

// nodeEnv, set to a nodeSpec in JSON, makes the test binary a NATS
// node (see TestMain): a process of its own that a test can SIGKILL, so
// that its peers get no shutdown notice, as when a --cluster hub is
// killed with its embedded server.
const nodeEnv = "NATSJS_TEST_NODE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(nodeEnv); spec != "" {
		os.Exit(runNode(spec))
	}
	os.Exit(m.Run())
}

// nodeSpec is what a child process's node is given: its name and peers,
// the rest on free 127.0.0.1 ports.
type nodeSpec struct {
	Name, StoreDir string
	Peers          []string
}

// runNode runs a node until its standard input closes (the test ended),
// after printing "ready CLIENT-URL CLUSTER-ADDR NAME".
func runNode(spec string) int {
	var ns nodeSpec
	if err := json.Unmarshal([]byte(spec), &ns); err != nil {
		fmt.Println("error", err)
		return 2
	}
	n, err := natsnode.Start(natsnode.Config{Name: ns.Name, Peers: ns.Peers, StoreDir: ns.StoreDir,
		Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0"})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Printf("ready %s %s %s\n", n.ClientURL(), n.ClusterAddr(), n.Name())
	io.Copy(io.Discard, os.Stdin)
	n.Shutdown()
	return 0
}

// procNode is a NATS node in a process of its own.
type procNode struct {
	*e2etest.Process
	url, cluster, name, storeDir string
}

// startProcNode runs a node in a child process and waits until it is
// ready. An empty ns.StoreDir is a new one (a node started again on a
// killed one's gets its name and data back).
func startProcNode(t *testing.T, ns nodeSpec) *procNode {
	t.Helper()
	if ns.StoreDir == "" {
		ns.StoreDir = t.TempDir()
	}
	spec, _ := json.Marshal(ns)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(spec))
	stdin, err := cmd.StdinPipe() // open until the test ends
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	p := e2etest.StartProcess(t, "nats node "+ns.Name, cmd)
	out := p.Out.WaitFor(t, "\n")
	f := strings.Fields(out)
	if len(f) < 4 || f[0] != "ready" {
		t.Fatalf("nats node %s: %s", ns.Name, out)
	}
	return &procNode{Process: p, url: f[1], cluster: f[2], name: f[3], storeDir: ns.StoreDir}
}

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

// TestConsumerNodeKilled kills (SIGKILL) the NATS node that runs a
// store's consumer, while the store stays connected to another node and
// updates keep coming through the third: the store's callbacks must get
// every acknowledged update, once, in Seq order. A killed node is only
// marked offline by its peers minutes later: meanwhile the meta leader
// may place a new consumer on it again, which must not stall delivery (a
// --cluster hub killed with its embedded server took with it the
// consumers other hubs had placed on it).
func TestConsumerNodeKilled(t *testing.T) {
	first := startProcNode(t, nodeSpec{Name: "p0"})
	nodes := []*procNode{first}
	for i := 1; i < 3; i++ {
		nodes = append(nodes, startProcNode(t, nodeSpec{Name: fmt.Sprint("p", i), Peers: []string{first.cluster}}))
	}
	stream := fmt.Sprintf("K%d", streams.Add(1))
	cfg := natsjs.Config{Stream: stream, Replicas: 3}
	admin, err := nats.Connect(nodes[0].url + "," + nodes[1].url + "," + nodes[2].url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}

	// Open the subscribing store until its consumer lands on another node
	// than the one it is connected to (placement is random).
	var (
		sub           *natsjs.Store
		subAt, consAt int
		rec           = &recorder{}
	)
	before := map[string]string{}
	for attempt := 0; sub == nil; attempt++ {
		if attempt == 12 {
			t.Fatal("the store's consumer was always placed on its own node")
		}
		at := attempt % 3
		c := cfg
		c.URL = nodes[at].url
		s, err := natsjs.Open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		var mine string
		poll.Until(t, "the new store's consumer to have a leader", waitTimeout, func() bool {
			for name, leader := range consumerNodes(t, js, stream) {
				if _, old := before[name]; !old && leader != "" {
					mine = leader
					return true
				}
			}
			return false
		})
		if mine == nodes[at].name {
			s.Close(context.Background())
			before = consumerNodes(t, js, stream)
			continue
		}
		sub, subAt = s, at
		consAt = slices.IndexFunc(nodes, func(n *procNode) bool { return n.name == mine })
	}
	t.Cleanup(func() { sub.Close(context.Background()) })
	stop, err := sub.Subscribe(context.Background(), rec.fn)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	pubAt := 3 - subAt - consAt
	pc := cfg
	pc.URL = nodes[pubAt].url
	pub := openStore(t, pc.URL, pc)
	t.Logf("store on %s, its consumer on %s, publisher on %s", nodes[subAt].name, nodes[consAt].name, nodes[pubAt].name)

	var acked []string
	const total = 300
	for i := range total {
		if i == total/3 {
			nodes[consAt].Kill()
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
		time.Sleep(2 * time.Millisecond) // updates keep coming while the consumer is replaced
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
