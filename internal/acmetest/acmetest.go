// Package acmetest runs Pebble, Let's Encrypt's test ACME server, inside a
// test process on 127.0.0.1: a real CA that validates HTTP-01 and
// TLS-ALPN-01 challenges against the hub's ports, issues short-lived
// certificates on demand, counts the orders it was sent and answers OCSP
// for what it issued.
//
// Pebble reads its knobs from the environment when it starts, so Start
// sets them with t.Setenv: a test using it cannot be parallel.
package acmetest

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"golang.org/x/crypto/ocsp"
)

// Options say how the CA behaves.
type Options struct {
	// HTTPPort and TLSPort are where the CA connects to validate HTTP-01
	// and TLS-ALPN-01 challenges (the hub's plain-HTTP and HTTPS ports).
	HTTPPort, TLSPort int
	// Validity is the lifetime of issued certificates (default 90 days).
	Validity time.Duration
	// EAB, when set, makes the CA require external account binding with
	// one of these key IDs and (base64url) MAC keys.
	EAB map[string]string
}

// Server is a running Pebble.
type Server struct {
	// Directory is the ACME directory URL.
	Directory string
	// DirectoryCA is a PEM file with the certificate of the directory's
	// own HTTPS (what a client passes as the CA to trust for it).
	DirectoryCA string
	// Roots holds the root the issued certificates chain to.
	Roots *x509.CertPool

	orders, ocspAnswers atomic.Int64
	logs                lockedBuffer
}

// Start runs Pebble until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	// Pebble's defaults make a client's life hard on purpose (random
	// validation delays up to 15 s, 5 % of nonces refused); the tests
	// want the path a real CA takes, fast.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	s := &Server{}
	logger := log.New(&s.logs, "pebble ", log.Lmicroseconds)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble's log:\n%s", s.logs.String())
		}
	})

	var authority atomic.Pointer[ca.CAImpl]
	ocspSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.answerOCSP(w, r, authority.Load())
	}))
	t.Cleanup(ocspSrv.Close)

	validity := o.Validity
	if validity <= 0 {
		validity = 90 * 24 * time.Hour
	}
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: uint64(validity / time.Second)}}
	authority.Store(ca.New(logger, store, ocspSrv.URL, "rsa", 0, 1, profiles))
	v := va.New(logger, o.HTTPPort, o.TLSPort, false, "", store)
	for id, key := range o.EAB {
		if err := store.AddExternalAccountKeyByID(id, key); err != nil {
			t.Fatalf("pebble EAB key: %v", err)
		}
	}
	front := wfe.New(logger, store, v, authority.Load(), []string{"pebble.letsencrypt.org"}, false, len(o.EAB) > 0, 0, 0)
	api := front.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/order-plz" {
			s.orders.Add(1)
		}
		api.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients that hang up mid-handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)

	s.Directory = srv.URL + wfe.DirectoryPath
	s.DirectoryCA = filepath.Join(t.TempDir(), "pebble-directory-ca.pem")
	dirPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(s.DirectoryCA, dirPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s.Roots = x509.NewCertPool()
	s.Roots.AddCert(authority.Load().GetRootCert(0).Cert)
	return s
}

// Orders is how many orders the CA was sent.
func (s *Server) Orders() int { return int(s.orders.Load()) }

// OCSPAnswers is how many OCSP requests the CA answered.
func (s *Server) OCSPAnswers() int { return int(s.ocspAnswers.Load()) }

// answerOCSP says "good" for any serial, signed by the issuing
// intermediate (Pebble puts this responder's URL in its certificates but
// runs no responder itself).
func (s *Server) answerOCSP(w http.ResponseWriter, r *http.Request, authority *ca.CAImpl) {
	var raw []byte
	var err error
	if r.Method == http.MethodPost {
		raw, err = io.ReadAll(io.LimitReader(r.Body, 1<<16))
	} else {
		raw, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/"))
	}
	if err != nil || authority == nil {
		http.Error(w, "bad OCSP request", http.StatusBadRequest)
		return
	}
	req, err := ocsp.ParseRequest(raw)
	if err != nil {
		http.Error(w, "bad OCSP request", http.StatusBadRequest)
		return
	}
	issuer := authority.GetIntermediateCert(0).Cert
	now := time.Now()
	resp, err := ocsp.CreateResponse(issuer, issuer, ocsp.Response{
		Status:       ocsp.Good,
		SerialNumber: new(big.Int).Set(req.SerialNumber),
		ThisUpdate:   now.Add(-time.Minute),
		NextUpdate:   now.Add(time.Hour),
	}, crypto.Signer(authority.GetIntermediateKey(0)))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.ocspAnswers.Add(1)
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
