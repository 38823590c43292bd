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
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "ssekit e2e"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	dir := t.TempDir()
	cert, key := newCert(t, tmpl, nil, nil)
	tc := TestCert{Pool: x509.NewCertPool()}
	tc.CertFile, tc.KeyFile = writeCert(t, dir, "cert", cert, key)
	tc.Pool.AddCert(cert)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	tc.SPKIHash = base64.StdEncoding.EncodeToString(sum[:])
	return tc
}

// TestCA is a certificate authority made for one test, for what checks
// the peer's certificate against a CA (cluster routes, mutual TLS).
type TestCA struct {
	// CertFile is the CA's certificate, for "--cluster-tls-ca" and the like.
	CertFile string
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	dir      string
}

// NewTestCA makes a CA whose files go into a t.TempDir().
func NewTestCA(t testing.TB) *TestCA {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: "ssekit test CA"},
		IsCA:    true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	ca := &TestCA{dir: t.TempDir()}
	ca.cert, ca.key = newCert(t, tmpl, nil, nil)
	ca.CertFile = writePEM(t, ca.dir, "ca.pem", "CERTIFICATE", ca.cert.Raw)
	return ca
}

// Issue writes a certificate for 127.0.0.1 named name, valid for servers
// and clients (cluster routes are both), signed by the CA, and its key.
func (ca *TestCA) Issue(t testing.TB, name string) (certFile, keyFile string) {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	cert, key := newCert(t, tmpl, ca.cert, ca.key)
	return writeCert(t, ca.dir, name, cert, key)
}

// newCert fills in what every test certificate has (a fresh P-256 key, a
// serial, a validity around now) and signs tmpl with parentKey,
// or with its own key when parent is nil.
func newCert(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// writeCert writes cert and key as NAME.pem and NAME-key.pem in dir.
func writeCert(t testing.TB, dir, name string, cert *x509.Certificate, key *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", cert.Raw), writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", keyDER)
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
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
