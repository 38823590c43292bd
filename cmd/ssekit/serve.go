package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/systemd"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/matcher/urlpattern"
	"github.com/ssekit/sse/prommetrics"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/store/bolt"
)

const serveUsage = `Usage: ssekit serve [flags]

Runs the hub: Mercure-protocol publish/subscribe over HTTP with topics,
history replay by Last-Event-ID, JWT auth and a durable store.

  subscribe: GET  /.well-known/mercure?topic=<selector>
  publish:   POST /.well-known/mercure (form fields topic, data, id, type, retry, private)
  also:      /healthz, /readyz, /metrics, and the UI at /

With no flags it listens on 127.0.0.1:8080, keeps its history in
./ssekit-data, and creates a development key there (anonymous subscribers
are then allowed); it prints the UI's address and a publish command to paste.
On any other address it refuses to start without a configured key.

Started by systemd with socket activation (deploy/ssekit.socket), it serves
the socket systemd passes instead of --addr, and tells systemd when it is
ready (sd_notify; Type=notify in deploy/ssekit.service).

Every limit has a default a hub on the internet can keep; docs/security.md
lists them, with the threat model and how to run the hub there.

Every flag can also be set by the environment variable named after it in
brackets, and by its name under [serve] in the --config file (TOML, with
the issuers and the auth hook; docs/hooks.md); a flag on the command line
wins over its variable, which wins over the file. GOGC=50 in the environment
trims the memory per idle subscriber by about a fifth and costs about a
fifth of the durable publish throughput (docs/BENCHMARKS.md).
`

// serveConfig is what the serve flags say.
type serveConfig struct {
	addr, dataDir, store                             string
	jwtKey, jwtAlg, pubKey, pubAlg, subKey, subAlg   string
	auth                                             authFlags // serve_auth.go
	allowAnonymous                                   bool
	historySize                                      int
	historyAge                                       time.Duration
	historyBytes                                     int64
	corsOrigins                                      string
	heartbeat, writeTimeout, shutdownTimeout         time.Duration
	bodyTimeout                                      time.Duration
	queueSize, maxSubscribers, maxPerClient, maxTops int
	maxUpdateTopics                                  int
	writers                                          int
	trustedProxies                                   string
	maxBody                                          int64
	minWriteRate                                     int64
	publishRate                                      float64
	subscriptions                                    bool
	tlsCert, tlsKey                                  string
	logFormat, logLevel                              string
	nats                                             natsFlags   // store_nats.go
	edge                                             edgeFlags   // serve_edge.go
	h2                                               h2Flags     // serve_h2.go
	batch                                            batchFlags  // serve_batch.go
	file                                             configFlags // serve_config.go
}

func (m *Main) serveFlags(fs *flag.FlagSet) *serveConfig {
	c := &serveConfig{}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen on `HOST:PORT`")
	fs.StringVar(&c.dataDir, "data-dir", "ssekit-data", "`DIR` for the durable store and the development key")
	fs.StringVar(&c.store, "store", "bolt", "history store: `bolt` (durable, in --data-dir), memory, redis://HOST:6379/0 (also rediss://, redis+sentinel://, redis+cluster://), or nats://HOST:4222[,HOST2:4222…] (see docs/deploying.md)")
	fs.StringVar(&c.jwtKey, "jwt-key", "", "`KEY` verifying publisher and subscriber tokens: an HMAC secret (32 bytes or more), a PEM public key or certificate, a JWK, or @FILE")
	fs.StringVar(&c.jwtAlg, "jwt-alg", "", "`ALG` of --jwt-key: HS256, RS256, ES256, … (default: from the key for PEM or a JWK, else HS256)")
	fs.StringVar(&c.pubKey, "publisher-jwt-key", "", "`KEY` for publishers' tokens only (overrides --jwt-key for them)")
	fs.StringVar(&c.pubAlg, "publisher-jwt-alg", "", "`ALG` of --publisher-jwt-key (default: --jwt-alg)")
	fs.StringVar(&c.subKey, "subscriber-jwt-key", "", "`KEY` for subscribers' tokens only (overrides --jwt-key for them)")
	fs.StringVar(&c.subAlg, "subscriber-jwt-alg", "", "`ALG` of --subscriber-jwt-key (default: --jwt-alg)")
	c.auth.register(fs)
	fs.BoolVar(&c.allowAnonymous, "allow-anonymous", false, "let subscribers without a token in (they never get private updates); on by default with a development key")
	fs.IntVar(&c.historySize, "history-size", 10000, "updates kept for replay (`N`)")
	fs.DurationVar(&c.historyAge, "history-age", 0, "drop history older than `DURATION` (0: no age limit)")
	fs.Int64Var(&c.historyBytes, "history-bytes", 0, "bound the history's size to about `BYTES` (0: 64 MiB in memory, 1 GiB in bolt)")
	fs.StringVar(&c.corsOrigins, "cors-origins", "", "comma-separated `ORIGINS` allowed from browsers (https://app.example), or *")
	fs.DurationVar(&c.heartbeat, "heartbeat", 15*time.Second, "comment line on streams idle for `DURATION` (negative: none)")
	fs.DurationVar(&c.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "drop a subscriber that does not read for `DURATION`")
	fs.Int64Var(&c.minWriteRate, "min-write-rate", server.DefaultMinWriteRate, "drop a subscriber that, once behind, reads under `BYTES` per second over a --write-timeout (negative: any progress)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated `CIDRS` of proxies whose X-Forwarded-For names the client (for per-client limits and logs)")
	fs.IntVar(&c.writers, "writers", server.DefaultWriters, "goroutines writing to HTTP/1.1 subscribers (`N`)")
	fs.IntVar(&c.queueSize, "queue-size", hub.DefaultQueueSize, "updates queued per subscriber before it is dropped as too slow (`N`)")
	fs.IntVar(&c.maxSubscribers, "max-subscribers", 0, fmt.Sprintf("concurrent subscribers (`N`; 0: what the open-file limit leaves, here %d; negative: no limit; 503 above)", server.DefaultMaxSubscribers()))
	fs.IntVar(&c.maxPerClient, "max-subscribers-per-client", 0, "concurrent subscribers per client address (`N`; 0: no limit, as behind a NAT or an untrusted proxy many clients share one; 429 above)")
	fs.IntVar(&c.maxTops, "max-topics", server.DefaultMaxTopics, "topic selectors per subscription (`N`)")
	fs.Int64Var(&c.maxBody, "max-body", server.DefaultMaxBodyBytes, "largest publish body in `BYTES` (413 above)")
	fs.DurationVar(&c.bodyTimeout, "body-timeout", server.DefaultBodyTimeout, "time a publish body may take to arrive (`DURATION`; 408 after)")
	fs.IntVar(&c.maxUpdateTopics, "max-update-topics", server.DefaultMaxUpdateTopics, "topics per published update (`N`; 413 above)")
	fs.Float64Var(&c.publishRate, "publish-rate", 0, "publishes per second per token (`RATE`; 0: no limit; 429 above)")
	fs.BoolVar(&c.subscriptions, "subscriptions", false, "publish subscription events and serve the subscriptions API")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "serve HTTPS (and HTTP/2) with this certificate `FILE` (with --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "private key `FILE` for --tls-cert")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take (`DURATION`)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: `text` or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, `info`, warn or error")
	c.nats.register(fs)
	c.edge.register(fs)
	c.h2.register(fs)
	c.batch.register(fs)
	c.file.register(fs)
	addEnvTwins(fs)
	return c
}

// addEnvTwins names each flag's environment twin (SSEKIT_ and the flag's
// name in upper case with "_" for "-") in its help.
func addEnvTwins(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " [" + envName(f.Name) + "]" })
}

func envName(flagName string) string {
	return "SSEKIT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment twin.
func (m *Main) applyEnv(fs *flag.FlagSet) (set map[string]bool, err error) {
	set = make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v := m.getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageErrorf("%s=%q: %v", envName(f.Name), v, e)
			}
			set[f.Name] = true
		}
	})
	return set, err
}

func runServe(ctx context.Context, m *Main, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := m.serveFlags(fs)
	rest, err := m.parseFlags(fs, serveUsage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("takes no arguments, got %q", rest[0])
	}
	set, err := m.applyEnv(fs)
	if err != nil {
		return err
	}
	if err := m.applyConfigFile(fs, set, cfg); err != nil {
		return err
	}
	log, err := newLogger(m, cfg.logFormat, cfg.logLevel)
	if err != nil {
		return err
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return usageErrorf("--tls-cert and --tls-key go together")
	}
	if err := cfg.edge.check(cfg); err != nil { // serve_edge.go
		return err
	}

	// Under systemd socket activation (deploy/ssekit.socket) the listener
	// is systemd's; its address stands for --addr everywhere, the
	// loopback-only development key included.
	ln, err := activatedListener(cfg)
	if err != nil {
		return err
	}
	if ln != nil {
		cfg.addr = ln.Addr().String()
	}
	auth, devSecret, err := m.serveAuth(cfg)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	if cfg.file.check {
		return m.configChecked(cfg)
	}
	if devSecret != nil && !set["allow-anonymous"] {
		cfg.allowAnonymous = true
	}

	store, err := openStore(cfg, log)
	if err != nil {
		return err
	}
	defer store.Close(context.Background())

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := prommetrics.New(registry)
	if err != nil {
		return err
	}
	subHook, pubHook, err := cfg.file.authHooks(registry)
	if err != nil {
		return err
	}
	hubMetrics, err := cfg.file.openOutbox(ctx, cfg, store, registry, log, metrics)
	if err != nil {
		return err
	}
	defer cfg.file.closeOutbox()
	h, err := hub.New(hub.Config{
		Store:              store,
		QueueSize:          cfg.queueSize,
		Logger:             log,
		Metrics:            hubMetrics,
		SubscriptionEvents: cfg.subscriptions || cfg.file.subscriptionEvents(),
	})
	if err != nil {
		return err
	}
	if err := cfg.file.watchSubscriptions(ctx, h); err != nil {
		return err
	}
	var origins []string
	if cfg.corsOrigins != "" {
		origins = strings.Split(cfg.corsOrigins, ",")
	}
	proxies, err := parsePrefixes(cfg.trustedProxies)
	if err != nil {
		return usageErrorf("--trusted-proxies: %v", err)
	}
	scfg := server.Config{
		TrustedProxies:          proxies,
		Hub:                     h,
		Auth:                    auth,
		AllowAnonymous:          cfg.allowAnonymous,
		SubscribeHook:           subHook,
		PublishHook:             pubHook,
		SubscribePolicy:         cfg.file.policies,
		LatestState:             cfg.file.latestState(),
		CORSOrigins:             origins,
		Heartbeat:               cfg.heartbeat,
		WriteTimeout:            cfg.writeTimeout,
		MinWriteRate:            cfg.minWriteRate,
		Writers:                 cfg.writers,
		MaxBodyBytes:            cfg.maxBody,
		BodyTimeout:             cfg.bodyTimeout,
		MaxUpdateTopics:         cfg.maxUpdateTopics,
		MaxBatchUpdates:         cfg.batch.maxUpdates,
		MaxBatchBytes:           cfg.batch.maxBytes,
		MaxSubscribers:          cfg.maxSubscribers,
		MaxSubscribersPerClient: cfg.maxPerClient,
		MaxTopics:               cfg.maxTops,
		PublishRate:             cfg.publishRate,
		Subscriptions:           cfg.subscriptions,
		Ready:                   storeReady(store),
		Metrics:                 promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}),
		Logger:                  log,
	}
	cfg.auth.apply(&scfg)
	srv, err := server.New(scfg)
	if err != nil {
		return err
	}

	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.addr); err != nil {
			return err
		}
	}
	httpSrv := &http.Server{
		Handler:           cfg.file.adminRoutes(srv, scfg.Auth),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Protocols:         new(http.Protocols),
	}
	httpSrv.Protocols.SetHTTP1(true)
	httpSrv.Protocols.SetHTTP2(true)
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		httpSrv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else {
		httpSrv.Protocols.SetUnencryptedHTTP2(true) // h2c with prior knowledge
	}
	edgeStopped, err := startEdge(ctx, cfg, store, httpSrv, ln, log) // serve_edge.go: --domain, --http-addr, --http3
	if err != nil {
		ln.Close()
		return err
	}
	if httpSrv.TLSConfig != nil {
		scheme = "https"
	}
	served := make(chan error, 1)
	go func() { served <- cfg.h2.serve(httpSrv, srv, ln) }()

	base := scheme + "://" + ln.Addr().String()
	storeName := redactURL(cfg.store)
	if cfg.nats.cluster {
		storeName = "nats (embedded, --cluster)"
	}
	maxSubs := cfg.maxSubscribers
	if maxSubs == 0 {
		maxSubs = server.DefaultMaxSubscribers()
	}
	log.Info("hub listening", "url", base+"/.well-known/mercure", "store", storeName, "anonymous", cfg.allowAnonymous, "max_subscribers", maxSubs)
	if devSecret != nil {
		m.printDevHints(base, devSecret, cfg)
	}
	if err := systemd.Notify("READY=1"); err != nil {
		log.Warn("telling systemd the hub is ready", "err", err)
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: ending streams so clients reconnect elsewhere")
	systemd.Notify("STOPPING=1")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpSrv.Shutdown(shutdownCtx) }()
	err = srv.Shutdown(shutdownCtx)
	if herr := <-httpDone; err == nil {
		err = herr
	}
	edgeStopped()
	cfg.file.closeOutbox() // before the store it reads
	if cerr := store.Close(shutdownCtx); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// serveAuth builds the token verifier from the key flags. With no key on a
// loopback address it creates (or reuses) a development secret in the data
// directory and returns it; on any other address it refuses to start.
func (m *Main) serveAuth(cfg *serveConfig) (hub.Authenticator, []byte, error) {
	load := func(spec, alg string) (*jwtauth.Key, error) {
		if spec == "" {
			return nil, nil
		}
		if alg == "" {
			alg = cfg.jwtAlg
		}
		return jwtauth.LoadKey(alg, spec)
	}
	shared, err := load(cfg.jwtKey, cfg.jwtAlg)
	if err != nil {
		return nil, nil, fmt.Errorf("--jwt-key: %w", err)
	}
	pub, err := load(cfg.pubKey, cfg.pubAlg)
	if err != nil {
		return nil, nil, fmt.Errorf("--publisher-jwt-key: %w", err)
	}
	sub, err := load(cfg.subKey, cfg.subAlg)
	if err != nil {
		return nil, nil, fmt.Errorf("--subscriber-jwt-key: %w", err)
	}
	if pub == nil {
		pub = shared
	}
	if sub == nil {
		sub = shared
	}
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	issuers, err := cfg.auth.issuerList(pub, sub, scheme, cfg.addr)
	if err != nil {
		return nil, nil, err
	}
	issuers = append(issuers, cfg.file.issuers...)
	var devSecret []byte
	if pub == nil && sub == nil && !anyIssuerKey(issuers) {
		if !isLoopback(cfg.addr) {
			return nil, nil, usageErrorf("refusing to listen on %s without a key: set --jwt-key (or SSEKIT_JWT_KEY); the generated development key is for loopback addresses only", cfg.addr)
		}
		devSecret, _, err = jwtauth.LoadOrCreateSecret(filepath.Join(cfg.dataDir, "dev-jwt-secret"))
		if err != nil {
			return nil, nil, fmt.Errorf("development key: %w", err)
		}
		if pub, err = jwtauth.NewKey("HS256", devSecret); err != nil {
			return nil, nil, err
		}
	}
	if devSecret != nil {
		bindDevKey(issuers, pub)
	}
	resource := cfg.auth.effectiveResource
	if len(issuers) == 0 {
		resource = ""
	}
	auth, err := jwtauth.New(jwtauth.Config{
		PublisherKey: pub, SubscriberKey: sub, Issuers: issuers, Resource: resource,
		// A token's URL Pattern that does not compile (look-around, a
		// bad pattern) refuses the token, as the draft requires.
		ValidateMatcher: func(m hub.TokenMatcher) error {
			if m.Type != "urlpattern" {
				return nil
			}
			_, err := urlpattern.New(m.Match, resource)
			return err
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return auth, devSecret, nil
}

// activatedListener returns the listening socket systemd passed in, or nil
// when the hub was not socket-activated. The hub serves one address; a
// datagram socket beside it (ListenDatagram=) is HTTP/3's (serve_edge.go).
func activatedListener(cfg *serveConfig) (net.Listener, error) {
	socks, err := systemd.Sockets()
	if err != nil || len(socks) == 0 {
		return nil, err
	}
	return cfg.edge.takeActivated(socks) // serve_edge.go
}

// isLoopback reports whether addr (HOST:PORT) listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// printDevHints tells a newcomer where the UI is and how to publish.
func (m *Main) printDevHints(base string, secret []byte, cfg *serveConfig) {
	key, err := jwtauth.NewKey("HS256", secret)
	if err != nil {
		return
	}
	token, err := jwtauth.Sign(key, hub.Claims{Publish: []string{"*"}, Subscribe: []string{"*"}})
	if err != nil {
		return
	}
	hubURL := base + "/.well-known/mercure"
	publish := "ssekit publish --topic demo hello"
	if hubURL != defaultHubURL { // "ssekit publish" must find this hub
		publish = "ssekit publish --hub " + hubURL + " --topic demo hello"
	}
	fmt.Fprintf(m.Stderr, `
  ssekit hub ready (development key in %s)
  UI:        %s/
  subscribe: curl -N '%s?topic=demo'
  publish:   curl -d topic=demo -d data=hello -H 'Authorization: Bearer %s' %s
  or:        ssekit listen '%s?topic=demo'   and   SSEKIT_TOKEN=%s %s

`, filepath.Join(cfg.dataDir, "dev-jwt-secret"), base, hubURL, token, hubURL, hubURL, token, publish)
}

// defaultBoltHistoryBytes bounds the durable history when --history-bytes
// does not: --history-size updates of up to --max-body each would be 10 GB.
const defaultBoltHistoryBytes = 1 << 30

// openStore opens the store --store names. This is the one place that
// knows the list of stores.
func openStore(cfg *serveConfig, log *slog.Logger) (hub.Store, error) {
	switch {
	case isRedisURL(cfg.store):
		return openRedisStore(cfg, log)
	case isNATSURL(cfg.store) || cfg.nats.cluster:
		return openNATSStore(cfg, log)
	case cfg.store == "memory":
		return hub.NewMemoryStore(hub.MemoryStoreConfig{
			MaxUpdates: cfg.historySize,
			MaxBytes:   cfg.historyBytes,
			MaxAge:     cfg.historyAge,
		}), nil
	case cfg.store == "bolt":
		if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		maxBytes := cfg.historyBytes
		if maxBytes == 0 {
			maxBytes = defaultBoltHistoryBytes
		}
		return bolt.Open(filepath.Join(cfg.dataDir, "hub.db"), bolt.Config{
			HistorySize: cfg.historySize,
			MaxBytes:    maxBytes,
			MaxAge:      cfg.historyAge,
		})
	default:
		if u, err := url.Parse(cfg.store); err == nil && u.Scheme != "" {
			return nil, usageErrorf("--store %s: the %s store is not available in this build (use bolt or memory)", cfg.store, u.Scheme)
		}
		return nil, usageErrorf("--store %q: use bolt or memory", cfg.store)
	}
}

// storeReady is the readiness check: the store's own health when it can
// tell (network stores), otherwise ready.
func storeReady(s hub.Store) func(context.Context) error {
	hc, ok := s.(hub.HealthChecker)
	if !ok {
		return nil
	}
	return hc.Healthy
}

func newLogger(m *Main, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(m.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(m.Stderr, opts)), nil
	default:
		return nil, usageErrorf("--log-format %q: use text or json", format)
	}
}

// redactURL hides a password in a store URL (redis://:secret@host) for logs.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// parsePrefixes parses a comma-separated list of CIDR prefixes or single
// addresses.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", item)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
