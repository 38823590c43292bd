package edge_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/acmetest"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/redistest"
	"github.com/ssekit/sse/store/natsjs/natsnode"
)

// h2Client speaks HTTP/2 over TLS to "localhost", trusting roots only.
func h2Client(t *testing.T, roots *x509.CertPool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func servedCert(addr string, roots *x509.CertPool) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{ServerName: "localhost", RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func waitCert(t *testing.T, addr string, roots *x509.CertPool, ok func(*x509.Certificate) bool) *x509.Certificate {
	t.Helper()
	var got *x509.Certificate
	poll.Until(t, "the CA's certificate on "+addr, 90*time.Second, func() bool {
		c, err := servedCert(addr, roots)
		if err == nil && (ok == nil || ok(c)) {
			got = c
			return true
		}
		return false
	})
	return got
}

// TestServeDomain: "ssekit serve --domain localhost" against Pebble gets
// a certificate over a challenge Pebble really validates, serves HTTP/2
// over it, redirects plain HTTP, renews the (30-second) certificate, and
// once restarted serves the stored one without a new order.
func TestServeDomain(t *testing.T) {
	addrs := e2etest.FreeAddrs(t, 2)
	tlsAddr, httpAddr := addrs[0], addrs[1]
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	_, httpPort, _ := net.SplitHostPort(httpAddr)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: atoi(t, httpPort), TLSPort: atoi(t, tlsPort), Validity: 30 * time.Second})
	dataDir := t.TempDir()
	args := []string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", dataDir,
		"--domain", "localhost", "--acme-directory", ca.Directory, "--acme-ca-root", ca.DirectoryCA,
		"--acme-email", "ops@example.com", "--http-addr", httpAddr, "--acme-renew-check", "1s"}
	h := ssekit.Start(t, e2etest.HubSpec{Addr: tlsAddr, Args: args})
	first := waitCert(t, tlsAddr, ca.Roots, nil)
	if ca.Orders() != 1 {
		t.Errorf("%d orders for one domain; want 1", ca.Orders())
	}

	c := h2Client(t, ca.Roots)
	hubURL := "https://localhost:" + tlsPort + "/.well-known/mercure"
	s := e2etest.OpenStream(t, c, hubURL, "topic=acme", "", 60*time.Second)
	if s.Resp.ProtoMajor != 2 {
		t.Fatalf("subscription over %s; want HTTP/2", s.Resp.Proto)
	}
	id := mustPublish(t, c, hubURL, "acme", "", "over a CA's certificate")
	if ev := s.Next(t); ev.ID != id {
		t.Errorf("got %+v; want id %q", ev, id)
	}

	t.Run("Redirect", func(t *testing.T) {
		plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := plain.Get("http://localhost:" + httpPort + "/.well-known/mercure?topic=acme")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := "https://localhost:" + tlsPort + "/.well-known/mercure?topic=acme"
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
			t.Errorf("plain GET: %s, Location %q; want 301 to %q", resp.Status, resp.Header.Get("Location"), want)
		}
		resp, err = plain.Post("http://localhost:"+httpPort+"/.well-known/mercure", "application/x-www-form-urlencoded", strings.NewReader("topic=a&data=b"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect {
			t.Errorf("plain POST: %s; want 308 (a publish must not turn into a GET)", resp.Status)
		}
		// A challenge path with no challenge pending is not answered with
		// anything but the redirect.
		resp, err = plain.Get("http://localhost:" + httpPort + "/.well-known/acme-challenge/not-pending")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently {
			t.Errorf("unknown challenge token: %s; want 301", resp.Status)
		}
	})

	t.Run("Renews", func(t *testing.T) {
		waitCert(t, tlsAddr, ca.Roots, func(c *x509.Certificate) bool { return c.SerialNumber.Cmp(first.SerialNumber) != 0 })
	})

	t.Run("RestartReusesStored", func(t *testing.T) {
		if err := h.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := h.Wait(30 * time.Second); err != nil {
			t.Fatalf("hub exit: %v", err)
		}
		before := ca.Orders()
		ssekit.Start(t, e2etest.HubSpec{Addr: tlsAddr, Args: args})
		waitCert(t, tlsAddr, ca.Roots, nil)
		if n := ca.Orders(); n != before {
			t.Errorf("%d orders after the restart; want %d (the stored certificate)", n, before)
		}
	})
}

func TestServeDomainRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"IP as domain", []string{"--domain", "127.0.0.1"}, "not a domain name"},
		{"URL as domain", []string{"--domain", "https://hub.example.com"}, "not a domain name"},
		{"with tls-cert", []string{"--domain", "hub.example.com", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "leave --tls-cert"},
		{"half EAB", []string{"--domain", "hub.example.com", "--acme-eab-kid", "k"}, "external account binding"},
		{"bad challenge", []string{"--domain", "hub.example.com", "--acme-challenges", "dns-01"}, "dns-01"},
		{"no challenge left", []string{"--domain", "hub.example.com", "--acme-challenges", "http-01", "--http-addr", "off"}, "no challenge left"},
		{"redirect without TLS", []string{"--http-addr", "127.0.0.1:0"}, "needs --domain or --tls-cert"},
		{"https-port without TLS", []string{"--https-port", "443"}, "needs --domain or --tls-cert"},
		{"https-port out of range", []string{"--domain", "hub.example.com", "--https-port", "70000"}, "1 to 65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--jwt-key", testSecret, "--data-dir", t.TempDir()}, tc.args...)
			_, stderr, code := ssekit.Run(t, nil, "", args...)
			if code != 2 && code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit code %d, stderr %q; want a refusal saying %q", code, stderr, tc.want)
			}
		})
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a port: %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestServeDomainClusterOnRedis: two hubs of a cluster on one Redis, both
// with --domain, get the certificate from one order: they keep it in
// Redis under a lock both see.
func TestServeDomainClusterOnRedis(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	addrs := e2etest.FreeAddrs(t, 4)
	_, tlsPort, _ := net.SplitHostPort(addrs[0])
	_, httpPort, _ := net.SplitHostPort(addrs[1])
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: atoi(t, httpPort), TLSPort: atoi(t, tlsPort)})
	args := func(httpAddr string) []string {
		return []string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir(), "--store", rs.URL(),
			"--domain", "localhost", "--acme-directory", ca.Directory, "--acme-ca-root", ca.DirectoryCA, "--http-addr", httpAddr}
	}
	// The second node's ports are not those the CA validates: an order of
	// its own could only pass through the first node's answers.
	ssekit.Start(t, e2etest.HubSpec{Addr: addrs[0], Args: args(addrs[1])})
	ssekit.Start(t, e2etest.HubSpec{Addr: addrs[2], Args: args(addrs[3])})
	waitCert(t, addrs[0], ca.Roots, nil)
	waitCert(t, addrs[2], ca.Roots, nil)
	if n := ca.Orders(); n != 1 {
		t.Errorf("%d orders from two nodes; want 1", n)
	}
}

// TestServeDomainClusterOnNATS: two hubs of a cluster on one NATS
// JetStream, both with --domain, get the certificate from one order: they
// keep it in a JetStream KV bucket under a lock both see
// (internal/certnats).
func TestServeDomainClusterOnNATS(t *testing.T) {
	n, err := natsnode.Start(natsnode.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	addrs := e2etest.FreeAddrs(t, 4)
	_, tlsPort, _ := net.SplitHostPort(addrs[0])
	_, httpPort, _ := net.SplitHostPort(addrs[1])
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: atoi(t, httpPort), TLSPort: atoi(t, tlsPort)})
	args := func(httpAddr string) []string {
		return []string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir(), "--store", n.ClientURL(),
			"--domain", "localhost", "--acme-directory", ca.Directory, "--acme-ca-root", ca.DirectoryCA, "--http-addr", httpAddr}
	}
	// As on Redis: the second node's ports are not those the CA
	// validates, so only the shared storage gets it the certificate.
	ssekit.Start(t, e2etest.HubSpec{Addr: addrs[0], Args: args(addrs[1])})
	ssekit.Start(t, e2etest.HubSpec{Addr: addrs[2], Args: args(addrs[3])})
	a := waitCert(t, addrs[0], ca.Roots, nil)
	b := waitCert(t, addrs[2], ca.Roots, nil)
	if n := ca.Orders(); n != 1 {
		t.Errorf("%d orders from two nodes; want 1", n)
	}
	if a.SerialNumber.Cmp(b.SerialNumber) != 0 {
		t.Errorf("the nodes serve different certificates (serials %v, %v); want the one ordered", a.SerialNumber, b.SerialNumber)
	}
}
