package hostile_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/store/natsjs/natsnode"
)

// Cluster: the embedded NATS server of "ssekit serve --cluster" carries
// every update, private ones included, so its client and route ports
// require credentials derived from the cluster secret; a local process
// without them can neither connect as a client nor join as a route.

// clusterSecret is the --cluster-secret of these tests' nodes.
const clusterSecret = "hostile-cluster-0123456789abcdef0123456789"

// clusterNodes are --cluster nodes started together: their hubs, and
// their embedded NATS servers' client and route addresses.
type clusterNodes struct {
	hubs         []*e2etest.Hub
	nats, routes []string
}

// startCluster runs n "ssekit serve --cluster" nodes routing to each
// other (n == 1: a single node with no route port) with the extra
// flags, and waits until every one is ready.
func startCluster(t *testing.T, n int, extra ...string) clusterNodes {
	t.Helper()
	addrs := e2etest.FreeAddrs(t, 3*n)
	c := clusterNodes{nats: addrs[n : 2*n], routes: addrs[2*n:]}
	for i := range n {
		args := []string{"--data-dir", t.TempDir(), "--jwt-key", testSecret, "--allow-anonymous", "--log-level", "debug",
			"--cluster", "--nats-listen", c.nats[i]}
		if n > 1 {
			args = append(args, "--cluster-listen", c.routes[i], "--cluster-peers", strings.Join(c.routes, ","),
				"--nats-replicas", strconv.Itoa(n))
		}
		c.hubs = append(c.hubs, ssekit.Launch(t, e2etest.HubSpec{Addr: addrs[i], Args: append(args, extra...)}))
	}
	// A hub exiting while its fresh cluster forms is a regression
	// (natsjs.Open retries until the nodes have met), not a flake.
	for _, h := range c.hubs {
		h.WaitListening(t)
		h.WaitStatus(t, "/readyz", http.StatusOK)
	}
	return c
}

// connectRefused tries a NATS client connection to addr with opts and
// fails the test unless it is refused.
func connectRefused(t *testing.T, what, addr string, opts ...nats.Option) {
	t.Helper()
	opts = append(opts, nats.Timeout(5*time.Second), nats.NoReconnect(), nats.RetryOnFailedConnect(false))
	nc, err := nats.Connect("nats://"+addr, opts...)
	if err == nil {
		// A connection can open before the server's verdict: a
		// round trip settles it.
		err = nc.FlushTimeout(5 * time.Second)
		nc.Close()
	}
	if err == nil {
		t.Errorf("%s: connected to %s; want refused", what, addr)
		return
	}
	t.Logf("%s: refused as wanted: %v", what, err)
}

// TestClusterClientPortNeedsCredentials: with --cluster, the embedded
// NATS client port refuses a connection without credentials, with the
// cluster secret itself as the password, and with a wrong password; a
// NATS client on the route port is refused too. The hub itself is served
// meanwhile and delivers what it accepts.
func TestClusterClientPortNeedsCredentials(t *testing.T) {
	c := startCluster(t, 2, "--cluster-secret", clusterSecret)
	h := c.hubs[0]
	connectRefused(t, "anonymous client", c.nats[0])
	connectRefused(t, "the secret as a password", c.nats[0], nats.UserInfo("ssekit", clusterSecret))
	connectRefused(t, "a guessed password", c.nats[1], nats.UserInfo("ssekit", "ssekit"))
	connectRefused(t, "a token", c.nats[1], nats.Token(clusterSecret))
	connectRefused(t, "anonymous client on the route port", c.routes[0])

	// The documented login (docs/deploying.md) is let in: the refusals
	// above are about credentials, not a closed port.
	mac := hmac.New(sha256.New, []byte(clusterSecret))
	mac.Write([]byte("ssekit cluster client"))
	nc, err := nats.Connect("nats://"+c.nats[0], nats.UserInfo("ssekit", hex.EncodeToString(mac.Sum(nil))), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("the documented client login: %v", err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Errorf("the documented client login: %v", err)
	}
	nc.Close()

	st := e2etest.OpenStream(t, h.Client, h.URL(), "topic=news", "", e2etest.Timeout)
	if status, answer := h.PublishID(e2etest.PublisherToken(t, testSecret), "news", "after-attempts"); status != http.StatusOK {
		t.Fatalf("publish: %d %s; want 200", status, answer)
	}
	if ev := st.Next(t); ev.ID != "after-attempts" {
		t.Errorf("got id %q; want after-attempts", ev.ID)
	}
}

// TestClusterGeneratesSecret: a --cluster node without --cluster-secret
// generates one into its data directory (mode 0600, 32 bytes or more),
// keeps it across restarts' reads, and its client port is closed as well.
func TestClusterGeneratesSecret(t *testing.T) {
	addrs := e2etest.FreeAddrs(t, 2)
	dir := t.TempDir()
	h := ssekit.Launch(t, e2etest.HubSpec{Addr: addrs[0], Args: []string{"--data-dir", dir, "--jwt-key", testSecret,
		"--cluster", "--nats-listen", addrs[1]}})
	h.WaitListening(t)
	h.WaitStatus(t, "/readyz", http.StatusOK)
	path := filepath.Join(dir, "cluster-secret")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no generated secret: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v; want 0600", path, fi.Mode().Perm())
	}
	secret, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(bytes.TrimSpace(secret)); n < 32 {
		t.Errorf("generated secret of %d bytes; want at least 32", n)
	}
	if !strings.Contains(h.Out.String(), "generated the cluster secret") {
		t.Errorf("the hub did not say it generated the secret; output:\n%s", h.Out.String())
	}
	connectRefused(t, "anonymous client", addrs[1])
	connectRefused(t, "the generated secret as a password", addrs[1], nats.UserInfo("ssekit", string(bytes.TrimSpace(secret))))
}

// TestClusterShortSecretRefused: a cluster secret under 32 bytes stops
// the hub at start with one line saying why.
func TestClusterShortSecretRefused(t *testing.T) {
	addrs := e2etest.FreeAddrs(t, 2)
	_, stderr, code := ssekit.Run(t, nil, "", "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--jwt-key", testSecret,
		"--cluster", "--nats-listen", addrs[0], "--cluster-secret", "changeme")
	if code == 0 || !strings.Contains(stderr, "--cluster-secret: 8 bytes, want at least 32") {
		t.Errorf("exit %d, stderr %q; want a refusal naming the length", code, stderr)
	}
}

// logBuffer collects a natsnode's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitOutput waits up to e2etest.Timeout until out() contains one of want.
func waitOutput(t *testing.T, what string, out func() string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(e2etest.Timeout)
	for {
		s := strings.ToLower(out())
		for _, w := range want {
			if strings.Contains(s, strings.ToLower(w)) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: none of %q after %v; output:\n%s", what, want, e2etest.Timeout, out())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterRouteNeedsCredentials: a NATS server started by another
// local process, routing to the hub's cluster port without the route
// credentials (none, or the secret itself), is refused: the hub logs the
// authorization failure, and a subscriber on the rogue server to every
// subject receives nothing of an update the hub accepts.
func TestClusterRouteNeedsCredentials(t *testing.T) {
	c := startCluster(t, 2, "--cluster-secret", clusterSecret)
	h, routeAddr := c.hubs[0], c.routes[0]
	tok := e2etest.PublisherToken(t, testSecret)

	for _, rogue := range []struct {
		name string
		peer string
	}{
		{"no credentials", routeAddr},
		{"the secret as the password", "nats-route://ssekit-route:" + clusterSecret + "@" + routeAddr},
	} {
		t.Run(rogue.name, func(t *testing.T) {
			ra := e2etest.FreeAddrs(t, 2)
			var logs logBuffer
			n, err := natsnode.Start(natsnode.Config{
				Name: "rogue", Listen: ra[0], StoreDir: t.TempDir(), ClusterListen: ra[1],
				ClusterName: natsnode.DefaultClusterName, Peers: []string{rogue.peer},
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(n.Shutdown)
			nc, err := nats.Connect(n.ClientURL(), nats.Timeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			got := make(chan *nats.Msg, 16)
			if _, err := nc.ChanSubscribe(">", got); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			waitOutput(t, "the hub refusing the rogue route", h.Out.String, "authorization violation", "authentication error")

			if status, answer := h.PublishID(tok, "private", "while-"+strings.ReplaceAll(rogue.name, " ", "-")); status != http.StatusOK {
				t.Fatalf("publish: %d %s; want 200", status, answer)
			}
			// No route means nothing to wait for; a second's window
			// covers a route forwarding on loopback many times over.
			select {
			case m := <-got:
				t.Errorf("the rogue server received %q on %s; want nothing", m.Data, m.Subject)
			case <-time.After(time.Second):
			}
		})
	}
}

// TestClusterRouteTLS: two --cluster nodes with --cluster-tls-* form a
// cluster over TLS (an update published on one is delivered by the
// other), and a peer without a certificate signed by the CA is refused
// even with the right address.
func TestClusterRouteTLS(t *testing.T) {
	ca := e2etest.NewTestCA(t)
	caFile := ca.CertFile
	certFile, keyFile := ca.Issue(t, "node")

	c := startCluster(t, 2, "--cluster-secret", clusterSecret, "--cluster-tls-cert", certFile, "--cluster-tls-key", keyFile,
		"--cluster-tls-ca", caFile)
	a, b := c.hubs[0], c.hubs[1]
	st := e2etest.OpenStream(t, b.Client, b.URL(), "topic=news", "", e2etest.Timeout)
	if status, answer := a.PublishID(e2etest.PublisherToken(t, testSecret), "news", "over-tls"); status != http.StatusOK {
		t.Fatalf("publish on node a: %d %s; want 200", status, answer)
	}
	if ev := st.Next(t); ev.ID != "over-tls" {
		t.Errorf("node b delivered id %q; want over-tls", ev.ID)
	}

	// A plaintext client on a TLS route port gets nowhere, and a NATS
	// server routing to it without a certificate is refused.
	connectRefused(t, "plaintext client on the TLS route port", c.routes[0])
	ra := e2etest.FreeAddrs(t, 2)
	rogue, err := natsnode.Start(natsnode.Config{
		Name: "rogue", Listen: ra[0], StoreDir: t.TempDir(), ClusterListen: ra[1], Peers: []string{c.routes[0]},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rogue.Shutdown)
	waitOutput(t, "node a refusing a route without TLS", a.Out.String, "tls handshake", "tls required")
}
