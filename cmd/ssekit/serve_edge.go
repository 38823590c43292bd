package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/certnats"
	"github.com/ssekit/sse/internal/certredis"
	"github.com/ssekit/sse/internal/edge"
	"github.com/ssekit/sse/internal/systemd"
	"github.com/ssekit/sse/store/redisstream"
)

// edgeFlags are the serve flags for standing on the internet without a
// proxy: certificates over ACME, the plain-HTTP port, HTTP/3
// (internal/edge).
type edgeFlags struct {
	domains        domainList
	acmeDirectory  string
	acmeEmail      string
	acmeCARoot     string
	acmeStorage    string
	eabKeyID       string
	eabMACKey      string
	acmeChallenges string
	renewCheck     time.Duration
	httpAddr       string
	httpsPort      int
	http3          bool
	// activatedUDP is the datagram socket systemd passed (ListenDatagram=
	// in deploy/ssekit.socket), served as HTTP/3 instead of a socket of
	// our own; nil when none.
	activatedUDP *systemd.Socket
	// activatedHTTP is the stream socket named "http" systemd passed (a
	// second socket unit with FileDescriptorName=http, on port 80),
	// served as --http-addr's plain-HTTP redirect; nil when none.
	activatedHTTP net.Listener
}

// httpSocketName is the FileDescriptorName= of the plain-HTTP socket.
const httpSocketName = "http"

// takeActivated sorts the sockets systemd passed: one stream socket, the
// hub's listener; at most one datagram socket, HTTP/3's. Anything else
// is refused, with every socket closed.
func (e *edgeFlags) takeActivated(socks []systemd.Socket) (net.Listener, error) {
	var streams, datagrams []systemd.Socket
	var plain []systemd.Socket
	for _, s := range socks {
		if s.Listener != nil && s.Name == httpSocketName {
			plain = append(plain, s)
		} else if s.Listener != nil {
			streams = append(streams, s)
		} else {
			datagrams = append(datagrams, s)
		}
	}
	if len(streams) != 1 || len(datagrams) > 1 || len(plain) > 1 {
		for _, s := range socks {
			s.Close()
		}
		return nil, fmt.Errorf("systemd passed %d stream, %d datagram and %d %q sockets; the hub serves one of each at most (one ListenStream=, and one ListenDatagram= for HTTP/3, in the socket unit; one ListenStream= in a unit with FileDescriptorName=%s for plain HTTP)", len(streams), len(datagrams), len(plain), httpSocketName, httpSocketName)
	}
	if len(plain) == 1 {
		e.activatedHTTP = plain[0].Listener
	}
	if len(datagrams) == 1 {
		e.activatedUDP = &datagrams[0]
	}
	return streams[0].Listener, nil
}

// domainList is the repeatable --domain (or a comma-separated list, as
// in SSEKIT_DOMAIN).
type domainList []string

func (d *domainList) String() string { return strings.Join(*d, ",") }

func (d *domainList) Set(v string) error {
	for name := range strings.SplitSeq(v, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if err := edge.CheckDomain(name); err != nil {
			return err
		}
		*d = append(*d, name)
	}
	return nil
}

func (e *edgeFlags) register(fs *flag.FlagSet) {
	fs.Var(&e.domains, "domain", "serve HTTPS for `NAME` with a certificate obtained and renewed over ACME, kept in --data-dir/certificates (repeatable, or comma-separated; instead of --tls-cert)")
	fs.StringVar(&e.acmeDirectory, "acme-directory", edge.LetsEncrypt, "ACME directory `URL` of the CA issuing --domain's certificates")
	fs.StringVar(&e.acmeEmail, "acme-email", "", "contact `ADDRESS` given to the CA (expiry warnings)")
	fs.StringVar(&e.acmeStorage, "acme-storage", "", "`DIR` for certificates, keys and the ACME account (default: in Redis with a redis:// --store, in a NATS KV bucket with nats:// or --cluster, else --data-dir/certificates); nodes of a cluster sharing it (a shared file system) order each certificate once, under its lock files")
	fs.StringVar(&e.acmeCARoot, "acme-ca-root", "", "trust only the PEM certificates in `FILE` for the ACME directory's own HTTPS (a private CA)")
	fs.StringVar(&e.eabKeyID, "acme-eab-kid", "", "external account binding key `ID`, for CAs that require one (ZeroSSL, Google, SSL.com)")
	fs.StringVar(&e.eabMACKey, "acme-eab-hmac", "", "external account binding MAC `KEY` (base64url, as the CA gives it), or @FILE")
	fs.StringVar(&e.acmeChallenges, "acme-challenges", "http-01,tls-alpn-01", "ACME challenge `TYPES` to answer: http-01 (on --http-addr, reached on port 80), tls-alpn-01 (on --addr, reached on port 443)")
	fs.DurationVar(&e.renewCheck, "acme-renew-check", 10*time.Minute, "how often certificates are checked for renewal (`DURATION`)")
	fs.StringVar(&e.httpAddr, "http-addr", "", "plain-HTTP `HOST:PORT` answering HTTP-01 challenges and redirecting the rest to HTTPS (default with --domain: --addr's host, port 80; off: none)")
	fs.IntVar(&e.httpsPort, "https-port", 0, "the `PORT` clients reach HTTPS (and HTTP/3) on, when a port mapping or load balancer puts it elsewhere than --addr's (a container's -p 443:8443): the plain-HTTP redirect, Alt-Svc and draft-08's hub URL name it (default: --addr's port)")
	fs.BoolVar(&e.http3, "http3", true, "when serving HTTPS, also serve HTTP/3 over UDP on --addr's port and advertise it (Alt-Svc)")
}

// check refuses flag combinations that cannot work, before anything is
// opened.
func (e *edgeFlags) check(cfg *serveConfig) error {
	if len(e.domains) > 0 && cfg.tlsCert != "" {
		return usageErrorf("--domain obtains the certificate: leave --tls-cert and --tls-key out")
	}
	if e.httpAddr != "" && e.httpAddr != "off" && len(e.domains) == 0 && cfg.tlsCert == "" {
		return usageErrorf("--http-addr redirects to HTTPS: it needs --domain or --tls-cert")
	}
	if e.httpsPort < 0 || e.httpsPort > 65535 {
		return usageErrorf("--https-port %d: use 1 to 65535 (0: --addr's port)", e.httpsPort)
	}
	if e.httpsPort != 0 && len(e.domains) == 0 && cfg.tlsCert == "" {
		return usageErrorf("--https-port names where clients reach HTTPS: it needs --domain or --tls-cert")
	}
	// Draft-08 tokens name the hub by the URL clients use: with --domain
	// that is the domain's, not --addr's (":443" names no host).
	if len(e.domains) > 0 && len(cfg.auth.issuers) > 0 && cfg.auth.resource == "" {
		host := e.domains[0]
		port := strconv.Itoa(e.httpsPort)
		if e.httpsPort == 0 {
			_, port, _ = net.SplitHostPort(cfg.addr)
		}
		if port != "443" && port != "" {
			host = net.JoinHostPort(host, port)
		}
		cfg.auth.resource = "https://" + host + "/.well-known/mercure"
	}
	return nil
}

// startEdge sets up what --domain, --http-addr and --http3 ask for around
// httpSrv, whose HTTPS (or plain) listener is ln: certificates in its
// TLSConfig, the plain-HTTP redirect, HTTP/3 beside it. All of it starts
// stopping when httpSrv shuts down (HTTP/3 sends GOAWAY at once); the
// returned wait, called once the hub's streams have ended, lets the
// clients close their QUIC connections for a moment, closes what is left
// and returns when everything is stopped.
func startEdge(ctx context.Context, cfg *serveConfig, store hub.Store, httpSrv *http.Server, ln net.Listener, log *slog.Logger) (wait func(), err error) {
	e := &cfg.edge
	wait = func() {}
	var stops []func(context.Context)
	stop := func(ctx context.Context) {
		for _, f := range stops {
			f(ctx)
		}
	}
	port := ln.Addr().(*net.TCPAddr).Port
	// publicPort is the one clients use: the redirect and Alt-Svc name
	// it (behind a port mapping it is not the listener's).
	publicPort := port
	if e.httpsPort != 0 {
		publicPort = e.httpsPort
	}
	if e.activatedHTTP != nil && e.httpAddr != "off" {
		e.httpAddr = e.activatedHTTP.Addr().String() // systemd's stands for --http-addr
	}
	closeH3 := func() {}
	var certs *edge.Certs
	if len(e.domains) > 0 {
		if e.httpAddr == "" {
			host, _, _ := net.SplitHostPort(cfg.addr)
			e.httpAddr = net.JoinHostPort(host, "80")
		}
		ac, err := e.acmeConfig(cfg.dataDir, port, log)
		if err != nil {
			return wait, err
		}
		if e.acmeStorage == "" {
			st, closeStorage, err := sharedCertStorage(ctx, cfg, store)
			if err != nil {
				return wait, err
			}
			ac.Storage = st
			stops = append(stops, func(context.Context) { closeStorage() })
		}
		if certs, err = edge.NewCerts(ac); err != nil {
			return wait, usageErrorf("%v", err)
		}
		stops = append(stops, func(context.Context) { certs.Stop() })
		httpSrv.TLSConfig = certs.TLSConfig()
	}
	if e.activatedHTTP != nil {
		if httpSrv.TLSConfig == nil || e.httpAddr == "off" {
			stop(ctx)
			return wait, usageErrorf("systemd passed a plain-HTTP socket (FileDescriptorName=%s): it redirects to HTTPS, which needs --domain or --tls-cert (and no --http-addr off)", httpSocketName)
		}
	}
	if e.httpAddr != "" && e.httpAddr != "off" {
		if httpSrv.TLSConfig == nil {
			return wait, usageErrorf("--http-addr redirects to HTTPS: it needs --domain or --tls-cert")
		}
		var h http.Handler = edge.Redirect(publicPort)
		if certs != nil {
			h = certs.HTTPHandler(publicPort)
		}
		pln := e.activatedHTTP
		if pln == nil {
			if pln, err = net.Listen("tcp", e.httpAddr); err != nil {
				stop(ctx)
				return wait, fmt.Errorf("--http-addr: %w", err)
			}
		}
		plain := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       30 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          httpSrv.ErrorLog,
		}
		go plain.Serve(pln)
		stops = append(stops, func(ctx context.Context) { plain.Shutdown(ctx) })
		log.Info("redirecting plain HTTP to HTTPS", "addr", pln.Addr().String())
	}
	if e.activatedUDP != nil && (httpSrv.TLSConfig == nil || !e.http3) {
		log.Info("systemd passed a datagram socket, but HTTP/3 is off (no TLS, or --http3=false): closing it", "name", e.activatedUDP.Name, "udp", e.activatedUDP.PacketConn.LocalAddr().String())
		e.activatedUDP.Close()
		e.activatedUDP = nil
	}
	if httpSrv.TLSConfig != nil && e.http3 {
		var h3 *edge.H3
		var err error
		from := "udp"
		if e.activatedUDP != nil {
			h3, err = edge.NewH3(e.activatedUDP.PacketConn, httpSrv.TLSConfig, httpSrv.Handler, log)
			from = "systemd socket " + e.activatedUDP.Name
		} else {
			h3, err = edge.ListenH3(ln.Addr().String(), httpSrv.TLSConfig, httpSrv.Handler, log)
		}
		if err != nil {
			stop(ctx)
			return wait, fmt.Errorf("%w (--http3=false serves without it)", err)
		}
		go func() {
			if err := h3.Serve(); err != nil {
				log.Error("HTTP/3 stopped", "err", err)
			}
		}()
		h3Port := h3.Port()
		if e.httpsPort != 0 {
			h3Port = e.httpsPort // UDP mapped as TCP is
		}
		httpSrv.Handler = edge.AltSvc(h3Port, httpSrv.Handler)
		// Before the others: GOAWAY first, so clients move on while the
		// hub ends their streams.
		stops = append([]func(context.Context){func(ctx context.Context) { h3.Shutdown(ctx) }}, stops...)
		closeH3 = func() { h3.Shutdown(closedContext()) }
		log.Info("serving HTTP/3", "udp", h3.Addr(), "from", from)
	}
	if certs != nil {
		if err := certs.Manage(ctx); err != nil {
			stop(ctx)
			return wait, fmt.Errorf("certificates: %w", err)
		}
		log.Info("managing certificates", "domains", e.domains.String(), "ca", e.acmeDirectory)
	}
	stopped := make(chan struct{})
	httpSrv.RegisterOnShutdown(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
		defer cancel()
		stop(ctx)
		close(stopped)
	})
	wait = func() {
		select {
		case <-stopped:
			return
		case <-time.After(quicGrace):
		}
		closeH3()
		<-stopped
	}
	return wait, nil
}

// quicGrace is how long, once the hub's streams have ended, HTTP/3
// clients are given to close their connections after GOAWAY before the
// hub closes them (CONNECTION_CLOSE, no error).
const quicGrace = time.Second

// sharedCertStorage is where a cluster's nodes keep their certificates
// when the store is shared: in Redis with a redis:// store
// (internal/certredis), in JetStream KV with nats:// or --cluster
// (internal/certnats), so that each certificate is ordered once under a
// lock every node sees. Nil (the data directory) for the other stores.
func sharedCertStorage(ctx context.Context, cfg *serveConfig, store hub.Store) (certmagic.Storage, func(), error) {
	switch {
	case isRedisURL(cfg.store):
		rdb, prefix, err := redisstream.NewClient(cfg.store)
		if err != nil {
			return nil, nil, err
		}
		if prefix == "" {
			prefix = "ssekit"
		}
		return certredis.New(rdb, prefix+":certs"), func() { rdb.Close() }, nil
	case isNATSURL(cfg.store) || cfg.nats.cluster:
		js, ok := store.(interface{ JetStream() jetstream.JetStream })
		if !ok {
			return nil, func() {}, nil
		}
		replicas := cfg.nats.replicas
		if replicas == 0 && cfg.nats.cluster && cfg.nats.clusterPeers != "" {
			replicas = 3 // as the stream's (store_nats.go)
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err := certnats.New(ctx, js.JetStream(), certnats.Config{Bucket: cfg.nats.stream + "_certs", Replicas: replicas})
		if err != nil {
			return nil, nil, err
		}
		return st, func() {}, nil
	}
	return nil, func() {}, nil
}

func closedContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func (e *edgeFlags) acmeConfig(dataDir string, tlsPort int, log *slog.Logger) (edge.ACMEConfig, error) {
	ac := edge.ACMEConfig{
		Domains:            e.domains,
		Directory:          e.acmeDirectory,
		Email:              e.acmeEmail,
		EABKeyID:           e.eabKeyID,
		Dir:                e.acmeStorage,
		TLSPort:            tlsPort,
		RenewCheckInterval: e.renewCheck,
		Logger:             log,
	}
	if ac.Dir == "" {
		ac.Dir = edge.DirFor(dataDir)
	}
	mac, err := readAtFile(e.eabMACKey)
	if err != nil {
		return ac, fmt.Errorf("--acme-eab-hmac: %w", err)
	}
	ac.EABMACKey = mac
	if e.acmeCARoot != "" {
		b, err := os.ReadFile(e.acmeCARoot)
		if err != nil {
			return ac, fmt.Errorf("--acme-ca-root: %w", err)
		}
		ac.CARoots = x509.NewCertPool()
		if !ac.CARoots.AppendCertsFromPEM(b) {
			return ac, usageErrorf("--acme-ca-root: no PEM certificate in %s", e.acmeCARoot)
		}
	}
	http01, alpn := false, false
	for c := range strings.SplitSeq(e.acmeChallenges, ",") {
		switch strings.TrimSpace(c) {
		case "http-01":
			http01 = true
		case "tls-alpn-01":
			alpn = true
		default:
			return ac, usageErrorf("--acme-challenges: %q is not http-01 or tls-alpn-01", c)
		}
	}
	ac.NoHTTP01, ac.NoTLSALPN01 = !http01 || e.httpAddr == "off", !alpn
	if ac.NoHTTP01 && ac.NoTLSALPN01 {
		return ac, usageErrorf("--acme-challenges: no challenge left to answer (--http-addr off leaves only tls-alpn-01)")
	}
	if e.httpAddr != "" && e.httpAddr != "off" {
		host, p, err := net.SplitHostPort(e.httpAddr)
		if err != nil {
			return ac, usageErrorf("--http-addr: %v", err)
		}
		if ac.HTTPPort, err = strconv.Atoi(p); err != nil {
			return ac, usageErrorf("--http-addr: port %q", p)
		}
		ac.ListenHost = host
	}
	return ac, nil
}

// readAtFile returns v, or the trimmed contents of FILE for "@FILE".
func readAtFile(v string) (string, error) {
	name, ok := strings.CutPrefix(v, "@")
	if !ok {
		return v, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", errors.New(name + " is empty")
	}
	return s, nil
}
