package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
)

// TestH2C subscribes and publishes over HTTP/2 cleartext.
func TestH2C(t *testing.T) {
	h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir()}})
	c := e2etest.NewH2CClient(t)
	s := e2etest.OpenStream(t, c, h.URL(), "topic=h2c", "", 60*time.Second)
	if s.Resp.ProtoMajor != 2 {
		t.Fatalf("subscription over %s; want HTTP/2", s.Resp.Proto)
	}
	id := mustPublish(t, c, h.URL(), "h2c", "", "over h2c")
	if ev := s.Next(t); ev.ID != id || ev.Data != "over h2c" {
		t.Errorf("got %+v; want id %q, data %q", ev, id, "over h2c")
	}
}

// TestTLS serves HTTPS with --tls-cert/--tls-key (a self-signed
// certificate made here): a Go client subscribes over HTTP/2, "ssekit
// publish --insecure" publishes, and "ssekit listen --insecure" receives.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", certFile, "--tls-key", keyFile}})
	if !strings.HasPrefix(h.URL(), "https://") {
		t.Fatalf("hub URL %s; want https", h.URL())
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	s := e2etest.OpenStream(t, c, h.URL(), "topic=tls", "", 60*time.Second)
	if s.Resp.ProtoMajor != 2 || s.Resp.TLS == nil {
		t.Fatalf("subscription over %s (TLS %v); want HTTP/2 over TLS", s.Resp.Proto, s.Resp.TLS != nil)
	}

	stdout, stderr, code := ssekit.Run(t, []string{"SSEKIT_TOKEN=" + publisherToken(t)}, "",
		"publish", "--insecure", "--hub", h.URL(), "--topic", "tls", "secret data")
	if code != 0 {
		t.Fatalf("ssekit publish over TLS: exit code %d: %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	if ev := s.Next(t); ev.ID != id || ev.Data != "secret data" {
		t.Errorf("got %+v; want id %q, data %q", ev, id, "secret data")
	}

	// Without --insecure the self-signed certificate is refused, in one line.
	_, stderr, code = ssekit.Run(t, []string{"SSEKIT_TOKEN=" + publisherToken(t)}, "",
		"publish", "--hub", h.URL(), "--topic", "tls", "x")
	if code != 1 || !strings.Contains(stderr, "certificate") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("publish to a self-signed hub without --insecure: exit code %d, stderr %q; want 1 and one line about the certificate", code, stderr)
	}

	stdout, stderr, code = ssekit.Run(t, nil, "", "listen", "--insecure", "--json", "--max-events", "1", "--timeout", "60s",
		"--last-event-id", "earliest", h.URL()+"?topic=tls")
	if code != 0 || !strings.Contains(stdout, `"data":"secret data"`) || !strings.Contains(stderr, "HTTP/2") {
		t.Errorf("ssekit listen over TLS: exit code %d, stdout %q, stderr %q; want the update, over HTTP/2", code, stdout, stderr)
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key into dir
// and returns their paths and a pool that trusts the certificate.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ssekit e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
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
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
