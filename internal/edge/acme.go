// Package edge is what a hub needs to stand on the internet by itself:
// certificates obtained and renewed over ACME (certmagic), the plain-HTTP
// listener that answers HTTP-01 challenges and redirects everything else
// to HTTPS, and HTTP/3 over QUIC (quic-go) on the HTTPS port.
//
// It knows nothing of the hub: it takes and returns http.Handlers and
// tls.Configs, and cmd/ssekit wires them around the server.
package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
)

// Errors of this package.
var (
	ErrNoDomain      = errors.New("edge: no domain to obtain a certificate for")
	ErrBadDomain     = errors.New("edge: not a domain name")
	ErrEABIncomplete = errors.New("edge: external account binding needs both a key ID and a MAC key")
	ErrNoStorage     = errors.New("edge: no certificate storage (set Dir or Storage)")
	ErrNoChallenge   = errors.New("edge: both challenge types are off")
)

// LetsEncrypt is the default ACME directory.
const LetsEncrypt = certmagic.LetsEncryptProductionCA

// maxDomains bounds --domain: every name is one more certificate to
// obtain, renew and keep in memory.
const maxDomains = 100

// ACMEConfig says how to obtain certificates. Its zero value is not enough:
// Domains and Dir (or Storage) are needed.
type ACMEConfig struct {
	// Domains are the names to obtain certificates for (one each).
	Domains []string
	// Directory is the ACME directory URL (default: Let's Encrypt's).
	Directory string
	// Email is the contact address given to the CA ("" : none).
	Email string
	// EABKeyID and EABMACKey bind the ACME account to an account at the
	// CA, for CAs that require it (ZeroSSL, Google, SSL.com …). The MAC
	// key is base64url, as the CA hands it out.
	EABKeyID, EABMACKey string
	// CARoots, when set, are the only roots trusted for the ACME
	// directory's own HTTPS (a private CA: step-ca, Pebble in tests).
	CARoots *x509.CertPool
	// Dir is where certificates, keys and the ACME account live (a
	// subdirectory of the hub's data directory). Two hubs sharing it (a
	// shared file system) share the certificates, and its lock files make
	// one of them order while the other waits and loads.
	Dir string
	// Storage replaces Dir with another certmagic.Storage (one with a lock
	// every node sees, for a cluster without a shared file system).
	Storage certmagic.Storage
	// HTTPPort and TLSPort are the ports the hub answers challenges on
	// (the CA always connects to 80 and 443; these differ only behind a
	// port mapping, or in tests). 0: 80 and 443.
	HTTPPort, TLSPort int
	// ListenHost is the address the challenge ports are bound on.
	ListenHost string
	// NoHTTP01 and NoTLSALPN01 turn a challenge type off (when port 80,
	// or 443, does not reach this hub). Not both.
	NoHTTP01, NoTLSALPN01 bool
	// RenewCheckInterval is how often certificates are checked for
	// renewal (default: certmagic's, 10 minutes).
	RenewCheckInterval time.Duration
	// OCSPCheckInterval is how often OCSP staples are refreshed (default:
	// certmagic's, 1 hour).
	OCSPCheckInterval time.Duration
	// Logger gets certificate events (obtained, renewed, failed); nil
	// discards them.
	Logger *slog.Logger
}

// Certs obtains and renews the certificates of an ACMEConfig and serves
// them (and the TLS-ALPN-01 challenge) in TLS handshakes.
type Certs struct {
	magic   *certmagic.Config
	cache   *certmagic.Cache
	issuer  *certmagic.ACMEIssuer
	domains []string
	stop    sync.Once
}

// CheckDomain says why name cannot have a certificate, or nil.
func CheckDomain(name string) error {
	if name == "" || len(name) > 253 || strings.HasSuffix(name, ".") || net.ParseIP(name) != nil {
		return fmt.Errorf("%w: %q", ErrBadDomain, name)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("%w: %q", ErrBadDomain, name)
		}
		for i, c := range label {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || (c == '*' && i == 0 && len(label) == 1)
			if !ok {
				return fmt.Errorf("%w: %q", ErrBadDomain, name)
			}
		}
	}
	return nil
}

// NewCerts checks c and prepares the certificate manager; Manage starts
// obtaining.
func NewCerts(c ACMEConfig) (*Certs, error) {
	if len(c.Domains) == 0 {
		return nil, ErrNoDomain
	}
	if len(c.Domains) > maxDomains {
		return nil, fmt.Errorf("%w: %d domains, at most %d", ErrBadDomain, len(c.Domains), maxDomains)
	}
	for _, d := range c.Domains {
		if err := CheckDomain(d); err != nil {
			return nil, err
		}
	}
	if (c.EABKeyID == "") != (c.EABMACKey == "") {
		return nil, ErrEABIncomplete
	}
	if c.NoHTTP01 && c.NoTLSALPN01 {
		return nil, ErrNoChallenge
	}
	storage := c.Storage
	if storage == nil {
		if c.Dir == "" {
			return nil, ErrNoStorage
		}
		if err := os.MkdirAll(c.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("edge: certificate directory: %w", err)
		}
		storage = &certmagic.FileStorage{Path: c.Dir}
	}
	if c.Directory == "" {
		c.Directory = LetsEncrypt
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	zl := newZapLogger(log)

	certs := &Certs{domains: c.Domains}
	certs.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			return certs.magic, nil
		},
		RenewCheckInterval: c.RenewCheckInterval,
		OCSPCheckInterval:  c.OCSPCheckInterval,
		Logger:             zl,
	})
	certs.magic = certmagic.New(certs.cache, certmagic.Config{
		Storage: storage,
		Logger:  zl,
		OnEvent: func(_ context.Context, event string, data map[string]any) error {
			logEvent(log, event, data)
			return nil
		},
	})
	iss := certmagic.ACMEIssuer{
		CA:                      c.Directory,
		TestCA:                  c.Directory, // never fall back to another CA's staging
		Email:                   c.Email,
		Agreed:                  true,
		TrustedRoots:            c.CARoots,
		AltHTTPPort:             c.HTTPPort,
		AltTLSALPNPort:          c.TLSPort,
		ListenHost:              c.ListenHost,
		DisableHTTPChallenge:    c.NoHTTP01,
		DisableTLSALPNChallenge: c.NoTLSALPN01,
		Logger:                  zl,
	}
	if c.EABKeyID != "" {
		iss.ExternalAccount = &acme.EAB{KeyID: c.EABKeyID, MACKey: c.EABMACKey}
	}
	certs.issuer = certmagic.NewACMEIssuer(certs.magic, iss)
	certs.magic.Issuers = []certmagic.Issuer{certs.issuer}
	return certs, nil
}

// Manage loads the stored certificates and orders the missing ones in the
// background; they are renewed until Stop. It returns at once: the
// listeners must already be up, for the CA to reach the challenges.
func (c *Certs) Manage(ctx context.Context) error {
	return c.magic.ManageAsync(ctx, c.domains)
}

// Stop ends renewals; it may be called more than once.
func (c *Certs) Stop() { c.stop.Do(c.cache.Stop) }

// TLSConfig serves the managed certificates (with their OCSP staples) and
// answers TLS-ALPN-01 challenges; it offers h2 and http/1.1.
func (c *Certs) TLSConfig() *tls.Config {
	tc := c.magic.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	tc.NextProtos = append([]string{"h2", "http/1.1"}, tc.NextProtos...)
	return tc
}

// HTTPHandler is the plain-HTTP side: it answers HTTP-01 challenges
// (also those another node of a cluster started, from the shared storage)
// and redirects everything else to HTTPS on httpsPort.
func (c *Certs) HTTPHandler(httpsPort int) http.Handler {
	return c.issuer.HTTPChallengeHandler(Redirect(httpsPort))
}

// Redirect sends every request to the same host and path over HTTPS on
// port (443: no port in the URL). GET and HEAD get 301, others 308 so a
// publisher's POST is not turned into a GET.
func Redirect(port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" || strings.ContainsAny(host, "/\\@ ") {
			http.Error(w, "no Host to redirect to", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") { // IPv6 literal
			host = "[" + strings.Trim(host, "[]") + "]"
		}
		if port != 443 && port != 0 {
			host += ":" + strconv.Itoa(port)
		}
		code := http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			code = http.StatusMovedPermanently
		}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), code)
	})
}

// DirFor is the certificate directory inside a hub's data directory.
func DirFor(dataDir string) string { return filepath.Join(dataDir, "certificates") }

func logEvent(log *slog.Logger, event string, data map[string]any) {
	level := slog.LevelDebug
	switch event {
	case "cert_obtained":
		level = slog.LevelInfo
	case "cert_failed":
		level = slog.LevelError
	case "cert_ocsp_revoked":
		level = slog.LevelWarn
	}
	if !log.Enabled(context.Background(), level) {
		return
	}
	attrs := []any{"event", event}
	for _, k := range []string{"identifier", "renewal", "issuer", "error", "remaining"} {
		if v, ok := data[k]; ok {
			attrs = append(attrs, k, fmt.Sprint(v))
		}
	}
	log.Log(context.Background(), level, "certificate", attrs...)
}
