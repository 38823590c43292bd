package e2etest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCert is a self-signed certificate for 127.0.0.1 and localhost, made
// for one test, and its key, as files for "serve --tls-cert".
type TestCert struct {
	CertFile, KeyFile string
	// Pool trusts the certificate.
	Pool *x509.CertPool
	// SPKIHash is the base64 SHA-256 of its public key, what Chromium's
	// --ignore-certificate-errors-spki-list takes.
	SPKIHash string
}

// NewTestCert writes a fresh certificate and key into a t.TempDir().
func NewTestCert(t testing.TB) TestCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "ssekit e2e"},
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
	tc := TestCert{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Pool: x509.NewCertPool()}
	if err := os.WriteFile(tc.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tc.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	tc.Pool.AddCert(cert)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	tc.SPKIHash = base64.StdEncoding.EncodeToString(sum[:])
	return tc
}

// Args are the serve flags that use the certificate.
func (c TestCert) Args() []string { return []string{"--tls-cert", c.CertFile, "--tls-key", c.KeyFile} }

// ReplaceOnce replaces old, which must occur in s exactly once, by new: a
// configuration (of a proxy, a site) that no longer has the line a test
// rewrites fails the test loudly instead of being tested unchanged.
func ReplaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("configuration has %q %d times; want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}
