package edge_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/sse/internal/acmetest"
	"github.com/ssekit/sse/internal/certredis"
	"github.com/ssekit/sse/internal/edge"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/redistest"
)

func listen(t *testing.T, addr string) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

func rootsFromFile(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatal("no certificate in", file)
	}
	return p
}

// startNode serves the certificates of dir on the given listeners.
func startNode(t *testing.T, ca *acmetest.Server, dir string, tlsLn, httpLn net.Listener, tweak func(*edge.ACMEConfig)) *edge.Certs {
	t.Helper()
	c := edge.ACMEConfig{
		Domains:            []string{"localhost"},
		Directory:          ca.Directory,
		CARoots:            rootsFromFile(t, ca.DirectoryCA),
		Dir:                dir,
		HTTPPort:           httpLn.Addr().(*net.TCPAddr).Port,
		TLSPort:            tlsLn.Addr().(*net.TCPAddr).Port,
		ListenHost:         "127.0.0.1",
		RenewCheckInterval: time.Second,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tweak != nil {
		tweak(&c)
	}
	certs, err := edge.NewCerts(c)
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hub "+r.Proto) })
	hs := &http.Server{Handler: ok, TLSConfig: certs.TLSConfig(), ErrorLog: discardLog()}
	go hs.ServeTLS(tlsLn, "", "")
	ps := &http.Server{Handler: certs.HTTPHandler(c.TLSPort), ErrorLog: discardLog()}
	go ps.Serve(httpLn)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		certs.Stop()
		hs.Close()
		ps.Close()
	})
	if err := certs.Manage(ctx); err != nil {
		t.Fatal(err)
	}
	return certs
}

// handshake connects to the node as a browser would ("localhost", the
// CA's roots) and returns the connection state, or why not.
func handshake(addr string, roots *x509.CertPool) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: "localhost", RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

func waitCert(t *testing.T, addr string, roots *x509.CertPool) tls.ConnectionState {
	t.Helper()
	var st tls.ConnectionState
	var last error
	poll.Until(t, "a certificate from the CA on "+addr, 60*time.Second, func() bool {
		st, last = handshake(addr, roots)
		return last == nil
	})
	return st
}

func TestObtainsWithEachChallenge(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(*edge.ACMEConfig)
	}{
		{"HTTP-01", func(c *edge.ACMEConfig) { c.NoTLSALPN01 = true }},
		{"TLS-ALPN-01", func(c *edge.ACMEConfig) { c.NoHTTP01 = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlsLn, tlsPort := listen(t, "127.0.0.1:0")
			httpLn, httpPort := listen(t, "127.0.0.1:0")
			ca := acmetest.Start(t, acmetest.Options{HTTPPort: httpPort, TLSPort: tlsPort})
			startNode(t, ca, t.TempDir(), tlsLn, httpLn, tc.tweak)
			st := waitCert(t, tlsLn.Addr().String(), ca.Roots)
			if st.NegotiatedProtocol != "h2" {
				t.Errorf("ALPN: %q; want h2", st.NegotiatedProtocol)
			}
			if got := st.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != "localhost" {
				t.Errorf("certificate names %v; want [localhost]", got)
			}
			if n := ca.Orders(); n != 1 {
				t.Errorf("%d orders; want 1", n)
			}
			// The OCSP staple comes in the handshake once certmagic fetched it.
			poll.Until(t, "an OCSP staple", 30*time.Second, func() bool {
				st, err := handshake(tlsLn.Addr().String(), ca.Roots)
				return err == nil && len(st.OCSPResponse) > 0
			})
		})
	}
}

// TestRenews: a 20-second certificate is renewed before it expires.
func TestRenews(t *testing.T) {
	tlsLn, tlsPort := listen(t, "127.0.0.1:0")
	httpLn, httpPort := listen(t, "127.0.0.1:0")
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: httpPort, TLSPort: tlsPort, Validity: 20 * time.Second})
	startNode(t, ca, t.TempDir(), tlsLn, httpLn, nil)
	first := waitCert(t, tlsLn.Addr().String(), ca.Roots).PeerCertificates[0]
	poll.Until(t, "a renewed certificate", 60*time.Second, func() bool {
		st, err := handshake(tlsLn.Addr().String(), ca.Roots)
		return err == nil && st.PeerCertificates[0].SerialNumber.Cmp(first.SerialNumber) != 0
	})
	if n := ca.Orders(); n < 2 {
		t.Errorf("%d orders after a renewal; want 2 or more", n)
	}
}

// TestReusesStored: a node restarted on the same storage serves the stored
// certificate without an order of its own.
func TestReusesStored(t *testing.T) {
	tlsLn, tlsPort := listen(t, "127.0.0.1:0")
	httpLn, httpPort := listen(t, "127.0.0.1:0")
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: httpPort, TLSPort: tlsPort})
	dir := t.TempDir()
	first := startNode(t, ca, dir, tlsLn, httpLn, nil)
	waitCert(t, tlsLn.Addr().String(), ca.Roots)
	first.Stop()
	tlsLn.Close()
	httpLn.Close()

	// Not on the ports the CA validates: an order would fail.
	tlsLn2, _ := listen(t, "127.0.0.1:0")
	httpLn2, _ := listen(t, "127.0.0.1:0")
	startNode(t, ca, dir, tlsLn2, httpLn2, nil)
	waitCert(t, tlsLn2.Addr().String(), ca.Roots)
	if n := ca.Orders(); n != 1 {
		t.Errorf("%d orders after the restart; want 1 (none of its own)", n)
	}
}

// TestClusterOrdersOnce: two nodes sharing the certificate storage start
// together; the storage lock lets one order while the other waits, then
// loads what the first stored.
func TestClusterOrdersOnce(t *testing.T) {
	tlsLn, tlsPort := listen(t, "127.0.0.1:0")
	httpLn, httpPort := listen(t, "127.0.0.1:0")
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: httpPort, TLSPort: tlsPort})
	dir := t.TempDir()
	// The second node is not reachable by the CA (its ports are not the
	// ones the CA validates against): if it ordered, its order would fail.
	tlsLn2, _ := listen(t, "127.0.0.1:0")
	httpLn2, _ := listen(t, "127.0.0.1:0")
	startNode(t, ca, dir, tlsLn, httpLn, nil)
	startNode(t, ca, dir, tlsLn2, httpLn2, nil)
	waitCert(t, tlsLn.Addr().String(), ca.Roots)
	waitCert(t, tlsLn2.Addr().String(), ca.Roots)
	if n := ca.Orders(); n != 1 {
		t.Errorf("%d orders from two nodes on one storage; want 1", n)
	}
}

func TestEAB(t *testing.T) {
	tlsLn, tlsPort := listen(t, "127.0.0.1:0")
	httpLn, httpPort := listen(t, "127.0.0.1:0")
	const kid, mac = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: httpPort, TLSPort: tlsPort, EAB: map[string]string{kid: mac}})
	startNode(t, ca, t.TempDir(), tlsLn, httpLn, func(c *edge.ACMEConfig) { c.EABKeyID, c.EABMACKey = kid, mac })
	waitCert(t, tlsLn.Addr().String(), ca.Roots)
}

func TestNewCertsRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		c    edge.ACMEConfig
		want error
	}{
		{"no domain", edge.ACMEConfig{Dir: dir}, edge.ErrNoDomain},
		{"IP", edge.ACMEConfig{Dir: dir, Domains: []string{"192.0.2.1"}}, edge.ErrBadDomain},
		{"URL", edge.ACMEConfig{Dir: dir, Domains: []string{"https://hub.example.com"}}, edge.ErrBadDomain},
		{"trailing dot", edge.ACMEConfig{Dir: dir, Domains: []string{"hub.example.com."}}, edge.ErrBadDomain},
		{"long label", edge.ACMEConfig{Dir: dir, Domains: []string{strings.Repeat("a", 64) + ".com"}}, edge.ErrBadDomain},
		{"too many", edge.ACMEConfig{Dir: dir, Domains: manyDomains(101)}, edge.ErrBadDomain},
		{"half EAB", edge.ACMEConfig{Dir: dir, Domains: []string{"hub.example.com"}, EABKeyID: "k"}, edge.ErrEABIncomplete},
		{"no storage", edge.ACMEConfig{Domains: []string{"hub.example.com"}}, edge.ErrNoStorage},
		{"no challenge", edge.ACMEConfig{Dir: dir, Domains: []string{"hub.example.com"}, NoHTTP01: true, NoTLSALPN01: true}, edge.ErrNoChallenge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := edge.NewCerts(tc.c); !errors.Is(err, tc.want) {
				t.Errorf("got %v; want %v", err, tc.want)
			}
		})
	}
}

func manyDomains(n int) []string {
	d := make([]string, n)
	for i := range d {
		d[i] = "h" + strconv.Itoa(i) + ".example.com"
	}
	return d
}

// TestClusterOnRedisOrdersOnce: two nodes keeping their certificates in
// one Redis (internal/certredis) order once between them.
func TestClusterOnRedisOrdersOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	tlsLn, tlsPort := listen(t, "127.0.0.1:0")
	httpLn, httpPort := listen(t, "127.0.0.1:0")
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: httpPort, TLSPort: tlsPort})
	tlsLn2, _ := listen(t, "127.0.0.1:0")
	httpLn2, _ := listen(t, "127.0.0.1:0")
	onRedis := func(c *edge.ACMEConfig) {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rdb.Close() })
		c.Storage = certredis.New(rdb, "ssekit:certs")
	}
	startNode(t, ca, "", tlsLn, httpLn, onRedis)
	startNode(t, ca, "", tlsLn2, httpLn2, onRedis)
	waitCert(t, tlsLn.Addr().String(), ca.Roots)
	waitCert(t, tlsLn2.Addr().String(), ca.Roots)
	if n := ca.Orders(); n != 1 {
		t.Errorf("%d orders from two nodes on one Redis; want 1", n)
	}
}
