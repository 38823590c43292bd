// Package server is the hub's HTTP surface: the Mercure protocol
// (subscribe, publish, the subscriptions API), health and readiness, limits
// with clear answers, CORS, and the UI.
package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/server/h2serve"
)

// Defaults for Config.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultMaxTopics       = 100
	DefaultMaxUpdateTopics = 100
	DefaultWriteTimeout    = 10 * time.Second
	DefaultBodyTimeout     = 10 * time.Second
	DefaultMinWriteRate    = 8 << 10
	DefaultWriters         = 64
	DefaultPublishBurst    = 100
	retryAfterOverloaded   = 5 * time.Second
	retryAfterShuttingDown = 1 * time.Second
)

// Config configures a Server. Only Hub is required.
type Config struct {
	// Hub is the hub the server exposes.
	Hub *hub.Hub

	// Auth verifies publisher and subscriber tokens. Without it no publish
	// can be authorised (401) and only anonymous subscribers are served,
	// when AllowAnonymous is set.
	Auth hub.Authenticator

	// AllowAnonymous lets subscribers without a token in; they never
	// receive private updates.
	AllowAnonymous bool

	// SubscribeHook and PublishHook, when set, decide the subscribes and
	// publishes that carry no token (AllowAnonymous then no longer
	// applies to subscribers): the application in the loop (authhook).
	SubscribeHook, PublishHook AuthHook

	// SubscribePolicy, when set, may refuse subscriptions by their topics
	// and how they were authorised (package policy).
	SubscribePolicy SubscribePolicy

	// LatestState, when set, replays the last updates of latest-state
	// topics to subscribers that send no cursor (package policy).
	LatestState LatestState

	// CORSOrigins lists the origins allowed to call the hub from a browser,
	// exactly as they appear in the Origin header ("https://app.example").
	// Credentials (the auth cookie) are allowed for them. "*" allows any
	// origin but then without credentials. Empty: no cross-origin access.
	CORSOrigins []string

	// Heartbeat is how long a subscriber's stream may be idle before a
	// comment line is sent. Zero means sse.DefaultHeartbeat; negative
	// disables heartbeats (and with them the noticing of departed clients).
	Heartbeat time.Duration

	// WriteTimeout bounds one write to a subscriber; a subscriber that does
	// not read for that long is disconnected. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration

	// MinWriteRate is the rate in bytes per second a subscriber that has
	// fallen behind (its socket buffer full) must read at, measured over
	// windows of WriteTimeout; below it the subscriber is disconnected and
	// counted as slow. Zero means DefaultMinWriteRate; negative: any
	// progress in a window is enough.
	MinWriteRate int64

	// Writers is how many goroutines write to HTTP/1.1 subscribers, whose
	// connections are taken over from net/http so an idle subscriber costs
	// no goroutine. Zero means DefaultWriters.
	Writers int

	// BodyTimeout bounds reading a publish request's body, so a publisher
	// that sends it a byte at a time does not hold the request (408 after
	// it). Zero means DefaultBodyTimeout.
	BodyTimeout time.Duration

	// MaxBodyBytes limits a publish request's body (413 above it). Zero
	// means DefaultMaxBodyBytes.
	MaxBodyBytes int64

	// MaxUpdateTopics limits the topics of one published update (413 above
	// it): each is matched against every subscriber, and a private one
	// against every subscriber's claims. The publish body may have at most
	// that many fields and 32 others. Zero means DefaultMaxUpdateTopics.
	MaxUpdateTopics int

	// MaxBatchUpdates and MaxBatchBytes limit one batch publish (413 above
	// them; see docs/publishing.md), and one group of a streamed publish.
	// Zero means DefaultMaxBatchUpdates (at most hub.MaxBatchUpdates) and
	// DefaultMaxBatchBytes. A line of a batch is limited by MaxBodyBytes.
	MaxBatchUpdates int
	MaxBatchBytes   int64

	// MaxSubscribers limits concurrent subscribers (503 with Retry-After
	// above it). Zero means DefaultMaxSubscribers(), derived from the
	// open-file limit; negative means no limit (accepts then fail when the
	// process runs out of files).
	MaxSubscribers int

	// MaxSubscribersPerClient limits concurrent subscribers per client
	// address (429 with Retry-After above it). Zero means no limit: behind
	// a proxy that is not in TrustedProxies, or a NAT, every client has the
	// same address.
	MaxSubscribersPerClient int

	// TrustedProxies lists the addresses (CIDR prefixes) of the proxies in
	// front of the hub. A request from one of them is counted, limited and
	// logged as coming from the client its X-Forwarded-For names (the last
	// address there that is not itself a trusted proxy). Empty: the
	// connection's address is the client's, whatever the header says.
	TrustedProxies []netip.Prefix

	// MaxTopics limits the topic selectors of one subscription (400 above
	// it): topic= and draft-08 match* parameters together. Zero means
	// DefaultMaxTopics.
	MaxTopics int

	// HubURL is the hub's own URL as its clients reach it, such as
	// "https://example.com/.well-known/mercure": draft-08 URL Patterns and
	// topics are resolved against it. Empty: each request's own, from its
	// Host header and whether it came over TLS (behind a proxy that
	// rewrites either, set it).
	HubURL string

	// Resource is the hub's resource identifier, the "aud" draft-08 tokens
	// carry, as its protected-resource metadata (RFC 9728) names it.
	// Empty: HubURL, else each request's own hub URL.
	Resource string

	// AuthorizationServers are the issuers of the authorization servers
	// whose tokens the hub accepts, listed in the metadata. Empty: the
	// member is left out (self-issued tokens).
	AuthorizationServers []string

	// CookieName is the cookie a subscriber's token may come in, after
	// the Authorization header. Empty means DefaultCookieName. Draft-07's
	// hub.AuthCookie is read too, when this one is absent.
	CookieName string

	// PublishRate limits publishes per second per token (429 with
	// Retry-After above it), with bursts of PublishBurst. Zero means no
	// limit; PublishBurst zero means DefaultPublishBurst.
	PublishRate  float64
	PublishBurst int

	// Subscriptions enables the subscriptions API
	// (GET /.well-known/mercure/subscriptions…).
	Subscriptions bool

	// Ready reports whether the hub can serve (for /readyz), e.g. the
	// store's health. Nil means always ready until shutdown.
	Ready func(ctx context.Context) error

	// Metrics serves /metrics. Nil: 404.
	Metrics http.Handler

	// UI serves / (the hub's page). Nil: the built-in page (see UI).
	UI http.Handler

	// Logger receives the server's logs. Nil: discarded.
	Logger *slog.Logger
}

// Server serves the hub over HTTP. Create it with New.
type Server struct {
	cfg  Config
	hub  *hub.Hub
	log  *slog.Logger
	mux  *http.ServeMux
	pool *writerPool
	h2   *h2serve.Server // HTTP/2 for listeners from Listener

	limits      *subscriberLimits
	publishRate *rateLimiter
	cors        corsPolicy
	link        string   // the discovery Link header value (metadata.go)
	linkValue   []string // {link}, the header's value shared by every answer

	bodies   sync.Pool // *bytes.Buffer: publish bodies being parsed
	pubConns pubConns  // publishers' connections taken over (pubconn.go)

	shuttingDown atomic.Bool
	streams      sync.WaitGroup // HTTP/2 subscriber handlers still running
}

// New checks cfg and returns a Server; its writer goroutines run until
// Shutdown.
func New(cfg Config) (*Server, error) {
	if cfg.Hub == nil {
		return nil, errors.New("server: Config.Hub is required")
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = sse.DefaultHeartbeat
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MinWriteRate == 0 {
		cfg.MinWriteRate = DefaultMinWriteRate
	}
	minRate := max(cfg.MinWriteRate, 0)
	if cfg.Writers <= 0 {
		cfg.Writers = DefaultWriters
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxUpdateTopics <= 0 {
		cfg.MaxUpdateTopics = DefaultMaxUpdateTopics
	}
	cfg.MaxBatchUpdates, cfg.MaxBatchBytes = batchLimits(cfg.MaxBatchUpdates, cfg.MaxBatchBytes)
	if cfg.MaxTopics <= 0 {
		cfg.MaxTopics = DefaultMaxTopics
	}
	if cfg.PublishBurst <= 0 {
		cfg.PublishBurst = DefaultPublishBurst
	}
	if cfg.PublishRate < 0 || cfg.MaxSubscribersPerClient < 0 {
		return nil, errors.New("server: limits must not be negative")
	}
	if cfg.MaxSubscribers == 0 {
		cfg.MaxSubscribers = DefaultMaxSubscribers()
	}
	if err := checkHubURL(cfg.HubURL); err != nil {
		return nil, err
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	if !validCookieName(cfg.CookieName) {
		return nil, errors.New("server: CookieName " + strconv.Quote(cfg.CookieName) + " is not a cookie name (RFC 6265 token)")
	}
	cors, err := newCORSPolicy(cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:    cfg,
		hub:    cfg.Hub,
		log:    log,
		mux:    http.NewServeMux(),
		limits: newSubscriberLimits(cfg.MaxSubscribers, cfg.MaxSubscribersPerClient),
		cors:   cors,
		link:   discoveryLink(cfg.HubURL),
	}
	s.linkValue = []string{s.link}
	s.bodies.New = func() any { return new(bytes.Buffer) }
	if cfg.PublishRate > 0 {
		s.publishRate = newRateLimiter(cfg.PublishRate, cfg.PublishBurst)
	}
	if s.pool, err = newWriterPool(cfg.Writers, cfg.Heartbeat, cfg.WriteTimeout, minRate, s.endConn); err != nil {
		return nil, err
	}
	if s.h2, err = s.newH2(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET "+hub.Path, s.subscribe)
	s.mux.HandleFunc("POST "+hub.Path, s.publish)
	s.mux.HandleFunc(methodQuery+" "+hub.Path, s.subscribe)
	s.mux.HandleFunc("OPTIONS "+hub.Path, s.preflight)
	s.mux.HandleFunc("POST "+hub.BatchPath, s.publishBatch)
	s.mux.HandleFunc("OPTIONS "+hub.BatchPath, s.preflight)
	s.mux.HandleFunc("GET "+hub.SubscriptionsPath, s.subscriptions)
	s.mux.HandleFunc("GET "+hub.SubscriptionsPath+"/{a}", s.subscriptions)
	s.mux.HandleFunc("GET "+hub.SubscriptionsPath+"/{a}/{b}", s.subscriptions)
	s.mux.HandleFunc("GET "+hub.SubscriptionsPath+"/{a}/{b}/{c}", s.subscriptions)
	s.mux.HandleFunc("GET "+metadataPath, s.protectedResource)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET "+jsClientPath, s.jsClient)
	if s.cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", s.cfg.Metrics)
	}
	ui := s.cfg.UI
	if ui == nil {
		ui = UI()
	}
	s.mux.Handle("GET /", ui)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.cors.apply(w, r)
	// Discovery: every answer names the hub, as Mercure resources do.
	// One shared value, set without Add's canonicalisation and slice:
	// net/http only reads it, and a later Add or Set replaces the slice.
	if h := w.Header(); h["Link"] == nil {
		h["Link"] = s.linkValue
	} else {
		h.Add("Link", s.link)
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown.Load() {
		s.fail(w, r, tooBusy(http.StatusServiceUnavailable, "shutting down", retryAfterShuttingDown))
		return
	}
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.fail(w, r, tooBusy(http.StatusServiceUnavailable, "not ready: "+oneLine(err.Error()), retryAfterShuttingDown))
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ready\n")
}

// Shutdown stops taking subscribers and publishes, ends every stream so
// clients reconnect (to another node, behind a load balancer), and waits
// for the writers until ctx is done. Closing the store is the caller's,
// after Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shuttingDown.Store(true)
	s.pubConns.shutdown()
	s.h2.GoAway()
	err := s.hub.Shutdown(ctx)
	if perr := s.pool.shutdown(ctx); err == nil {
		err = perr
	}
	done := make(chan struct{})
	go func() { s.streams.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	if herr := s.h2.Close(ctx); err == nil {
		err = herr
	}
	return err
}

// oneLine keeps only the first line of s, so a reason is one line.
func oneLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
