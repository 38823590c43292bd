package edge_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/ssekit/sse/internal/e2etest"
)

// testCert is a certificate for 127.0.0.1 made for one test.
type testCert struct {
	certFile, keyFile string
	pool              *x509.CertPool
	spkiHash          string // base64 SHA-256 of the public key, for Chromium
}

func newTestCert(t testing.TB) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "ssekit e2e/edge"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tc := testCert{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), pool: x509.NewCertPool()}
	if err := os.WriteFile(tc.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tc.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	tc.pool.AddCert(cert)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	tc.spkiHash = base64.StdEncoding.EncodeToString(sum[:])
	return tc
}

func (tc testCert) args() []string {
	return []string{"--tls-cert", tc.certFile, "--tls-key", tc.keyFile}
}

// h3Client speaks HTTP/3 only (quic-go's client), trusting pool.
func h3Client(t *testing.T, pool *x509.CertPool) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, QUICConfig: &quic.Config{MaxIdleTimeout: 30 * time.Second}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}
}

// TestHTTP3 subscribes and publishes over HTTP/3 with quic-go's client,
// checks the HTTPS side advertises it, and resumes after the hub restarts
// (SIGTERM: GOAWAY, the stream ends cleanly) with Last-Event-ID.
func TestHTTP3(t *testing.T) {
	tc := newTestCert(t)
	dataDir := t.TempDir()
	args := append([]string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", dataDir, "--heartbeat", "200ms"}, tc.args()...)
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	c := h3Client(t, tc.pool)

	s := e2etest.OpenStream(t, c, h.URL(), "topic=h3", "", 60*time.Second)
	if s.Resp.ProtoMajor != 3 {
		t.Fatalf("subscription over %s; want HTTP/3", s.Resp.Proto)
	}
	id1 := mustPublish(t, c, h.URL(), "h3", "", "over QUIC")
	if ev := s.Next(t); ev.ID != id1 || ev.Data != "over QUIC" {
		t.Fatalf("got %+v; want id %q", ev, id1)
	}

	t.Run("AltSvc", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.pool}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(h.Base() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_, port, _ := net.SplitHostPort(h.Addr)
		if got, want := resp.Header.Get("Alt-Svc"), `h3=":`+port+`"`; !strings.HasPrefix(got, want) {
			t.Errorf("Alt-Svc over %s: %q; want %s…", resp.Proto, got, want)
		}
	})

	t.Run("Heartbeats", func(t *testing.T) {
		idle := e2etest.OpenStream(t, c, h.URL(), "topic=h3-idle", "", 60*time.Second)
		buf := make([]byte, 512)
		got := ""
		for strings.Count(got, ":") < 2 {
			n, err := idle.Resp.Body.Read(buf)
			if err != nil {
				t.Fatalf("idle stream after %q: %v", got, err)
			}
			got += string(buf[:n])
		}
	})

	// The restart: the stream ends without an error (GOAWAY, then the
	// end of the response), an update published while the hub is down
	// to another process on the same data comes by replay.
	if err := h.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, s.Resp.Body); err != nil && !errors.Is(err, io.EOF) {
		t.Errorf("stream at shutdown ended with %v; want its end (the hub ends it, after GOAWAY)", err)
	}
	if err := h.Wait(30 * time.Second); err != nil {
		t.Fatalf("hub exit: %v", err)
	}
	side := ssekit.Start(t, e2etest.HubSpec{Args: append([]string{"--http3=false"}, args...)})
	tcp := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.pool}}
	t.Cleanup(tcp.CloseIdleConnections)
	id2 := mustPublish(t, &http.Client{Transport: tcp}, side.URL(), "h3", "", "while away")
	side.Cmd.Process.Signal(syscall.SIGTERM)
	if err := side.Wait(30 * time.Second); err != nil {
		t.Fatalf("side hub exit: %v", err)
	}
	h = ssekit.Start(t, e2etest.HubSpec{Addr: h.Addr, Args: args})
	c = h3Client(t, tc.pool)
	s = e2etest.OpenStream(t, c, h.URL(), "topic=h3", id1, 60*time.Second)
	if ev := s.Next(t); ev.ID != id2 || ev.Data != "while away" {
		t.Fatalf("after the restart got %+v; want the missed %q", ev, id2)
	}
	id3 := mustPublish(t, c, h.URL(), "h3", "", "live again")
	if ev := s.Next(t); ev.ID != id3 {
		t.Fatalf("got %+v; want %q live", ev, id3)
	}
}
