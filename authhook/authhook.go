// Package authhook is the application in the loop for authorisation: a
// server.AuthHook that asks the application over HTTP whether a request
// without a token may subscribe (or publish), as Nchan's
// nchan_authorize_request and Centrifugo's subscribe proxy do.
//
// The hub POSTs a JSON Request to Config.URL and reads a JSON Answer
// (docs/hooks.md has the protocol and example applications). The answer is
// data, never trusted beyond the configuration: private and publish topics
// outside Config.PrivateTopics and Config.PublishTopics are dropped, the
// cache TTL is capped at Config.MaxCacheTTL, the payload bounded. Calls are
// bounded in time (Config.Timeout) and number (Config.Concurrency); when
// the application cannot answer, the hub fails closed (503 and
// Retry-After), never open.
package authhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/server"
)

// Defaults for Config.
const (
	DefaultTimeout          = 2 * time.Second
	DefaultConcurrency      = 64
	DefaultMaxCacheTTL      = time.Minute
	DefaultCacheEntries     = 10000
	DefaultMaxPayloadBytes  = 4 << 10
	DefaultMaxResponseBytes = 64 << 10
	DefaultRetryAfter       = 5 * time.Second
	// MaxGrants bounds the topics one answer may grant.
	MaxGrants = 100
)

// Errors.
var (
	ErrInvalidConfig = errors.New("authhook: invalid config")
	// ErrUnavailable is wrapped by every failure to get an answer (the
	// application down, slow, busy, or answering nonsense).
	ErrUnavailable = errors.New("authhook: application unavailable")
)

// Config configures a Hook. Only URL is required.
type Config struct {
	// URL is where the hub POSTs its requests (http or https).
	URL string
	// Client makes the requests; nil means a client of its own. It must
	// not follow redirects (the Hook's own does not).
	Client *http.Client
	// Timeout bounds one call, waiting for a free slot included. Zero
	// means DefaultTimeout.
	Timeout time.Duration
	// Concurrency bounds the calls in flight; a request that finds no free
	// slot within Timeout is answered 503. Zero means DefaultConcurrency.
	Concurrency int
	// ForwardHeaders are the request headers sent to the application
	// (none by default). ForwardCookies are the cookies sent, by name; "*"
	// sends all of them. Nil means all.
	ForwardHeaders []string
	ForwardCookies []string
	// PrivateTopics bounds what an answer's private_topics may grant: each
	// granted selector must start with one of these prefixes ("*": any,
	// "*" itself included). Empty: no private topic is ever granted.
	PrivateTopics []string
	// PublishTopics bounds an answer's publish_topics the same way.
	PublishTopics []string
	// MaxCacheTTL caps the cache_ttl of an answer. Zero means
	// DefaultMaxCacheTTL; negative disables caching.
	MaxCacheTTL time.Duration
	// CacheEntries bounds the decisions cached. Zero means
	// DefaultCacheEntries.
	CacheEntries int
	// MaxPayloadBytes bounds an answer's payload (larger ones are dropped
	// and counted). Zero means DefaultMaxPayloadBytes.
	MaxPayloadBytes int
	// MaxResponseBytes bounds the answer read. Zero means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int
	// RetryAfter is what a client is told to wait when the application is
	// unavailable. Zero means DefaultRetryAfter.
	RetryAfter time.Duration
	// Registerer, when set, gets the Hook's metrics:
	// ssekit_auth_hook_requests_total{action,outcome},
	// ssekit_auth_hook_duration_seconds{action} and
	// ssekit_auth_hook_grants_dropped_total{action}.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Request is the JSON the hub sends.
type Request struct {
	// Action is "subscribe" or "publish".
	Action string `json:"action"`
	// Topics are the subscription's topic selectors or the update's
	// topics; Matchers the draft-08 match* selectors.
	Topics   []string `json:"topics"`
	Matchers []string `json:"matchers,omitempty"`
	// Client is the client's address.
	Client string `json:"client"`
	// Headers and Cookies are those the configuration forwards.
	Headers map[string][]string `json:"headers,omitempty"`
	Cookies map[string]string   `json:"cookies,omitempty"`
}

// Answer is the JSON the application answers, with status 200. A 401 or
// 403 is a refusal too; any other status, or a body that is not an
// Answer, is the application being unavailable.
type Answer struct {
	// Allow grants the request.
	Allow bool `json:"allow"`
	// Reason is told to a refused client (one line, at most 200 bytes).
	Reason string `json:"reason,omitempty"`
	// PrivateTopics are the topic selectors whose private updates a
	// subscriber receives; PublishTopics those a publisher may publish
	// to (its request's topics must all be among them).
	PrivateTopics []string `json:"private_topics,omitempty"`
	PublishTopics []string `json:"publish_topics,omitempty"`
	// Payload is the subscriber's payload in the subscriptions API (a
	// JSON object).
	Payload json.RawMessage `json:"payload,omitempty"`
	// CacheTTL is how many seconds the same request may reuse the
	// decision (0: not cached).
	CacheTTL float64 `json:"cache_ttl,omitempty"`
}

// Hook asks the application. It implements server.AuthHook and is safe
// for concurrent use.
type Hook struct {
	cfg     Config
	url     string
	client  *http.Client
	slots   chan struct{}
	cookies map[string]bool // nil: all
	m       *metrics

	mu    sync.Mutex
	cache map[[32]byte]cached // guarded by mu
}

type cached struct {
	claims  *hub.Claims // nil: refused
	reason  string
	expires time.Time
}

// New checks cfg and returns its Hook.
func New(cfg Config) (*Hook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: url %q: want http(s)://HOST/PATH", ErrInvalidConfig, cfg.URL)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if cfg.Concurrency < 0 || cfg.CacheEntries < 0 || cfg.MaxPayloadBytes < 0 || cfg.MaxResponseBytes < 0 || cfg.Timeout < 0 || cfg.RetryAfter < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	}
	defd(&cfg.Timeout, DefaultTimeout)
	def(&cfg.Concurrency, DefaultConcurrency)
	defd(&cfg.MaxCacheTTL, DefaultMaxCacheTTL)
	def(&cfg.CacheEntries, DefaultCacheEntries)
	def(&cfg.MaxPayloadBytes, DefaultMaxPayloadBytes)
	def(&cfg.MaxResponseBytes, DefaultMaxResponseBytes)
	defd(&cfg.RetryAfter, DefaultRetryAfter)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Hook{cfg: cfg, url: u.String(), client: cfg.Client, slots: make(chan struct{}, cfg.Concurrency), cache: map[[32]byte]cached{}}
	if h.client == nil {
		h.client = &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, IdleConnTimeout: time.Minute},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is an answer of its own: unavailable
			},
		}
	}
	for _, c := range cfg.ForwardCookies {
		if c == "*" {
			h.cookies = nil
			break
		}
		if h.cookies == nil {
			h.cookies = map[string]bool{}
		}
		h.cookies[c] = true
	}
	if h.m, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	return h, nil
}

// unavailable is an ErrUnavailable carrying the Retry-After for the server.
type unavailable struct {
	err   error
	retry time.Duration
}

func (u *unavailable) Error() string             { return u.err.Error() }
func (u *unavailable) Unwrap() error             { return u.err }
func (u *unavailable) RetryAfter() time.Duration { return u.retry }
func (h *Hook) fail(format string, a ...any) error {
	return &unavailable{fmt.Errorf("%w: "+format, append([]any{ErrUnavailable}, a...)...), h.cfg.RetryAfter}
}

// Authorize implements server.AuthHook.
func (h *Hook) Authorize(ctx context.Context, r *server.HookRequest) (*hub.Claims, error) {
	action := "subscribe"
	if r.Publish {
		action = "publish"
	}
	req := h.request(action, r)
	body, err := json.Marshal(req)
	if err != nil {
		return nil, h.fail("encoding the request: %v", err)
	}
	key := sha256.Sum256(body)
	now := h.cfg.Now()
	if c, ok := h.cached(key, now); ok {
		if c.claims == nil {
			h.m.outcome(action, "cached_refused")
			return nil, refusal(c.reason)
		}
		h.m.outcome(action, "cached_granted")
		return c.claims, nil
	}

	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		h.m.outcome(action, "busy")
		return nil, h.fail("%d calls already in flight", cap(h.slots))
	}
	start := time.Now()
	ans, err := h.call(ctx, body)
	h.m.observe(action, time.Since(start))
	if err != nil {
		if ctx.Err() != nil {
			h.m.outcome(action, "timeout")
		} else {
			h.m.outcome(action, "error")
		}
		return nil, err
	}
	claims := h.claims(action, r, ans, key)
	ttl := min(time.Duration(ans.CacheTTL*float64(time.Second)), h.cfg.MaxCacheTTL)
	if ans.CacheTTL > 0 && ttl > 0 {
		h.store(key, cached{claims: claims, reason: ans.Reason, expires: now.Add(ttl)})
	}
	if claims == nil {
		h.m.outcome(action, "refused")
		return nil, refusal(ans.Reason)
	}
	h.m.outcome(action, "granted")
	return claims, nil
}

func refusal(reason string) error {
	if reason == "" {
		return server.ErrHookRefused
	}
	return fmt.Errorf("%w: %s", server.ErrHookRefused, reason)
}

// request is what is sent: only the headers and cookies configured.
func (h *Hook) request(action string, r *server.HookRequest) *Request {
	req := &Request{Action: action, Topics: r.Topics, Matchers: r.Matchers, Client: r.Client}
	if req.Topics == nil {
		req.Topics = []string{}
	}
	if r.HTTP == nil {
		return req
	}
	for _, name := range h.cfg.ForwardHeaders {
		if v := r.HTTP.Header.Values(name); len(v) > 0 {
			if req.Headers == nil {
				req.Headers = map[string][]string{}
			}
			req.Headers[http.CanonicalHeaderKey(name)] = v
		}
	}
	for _, c := range r.HTTP.Cookies() {
		if c.Name == hub.AuthCookie || (h.cookies != nil && !h.cookies[c.Name]) {
			continue
		}
		if req.Cookies == nil {
			req.Cookies = map[string]string{}
		}
		if _, dup := req.Cookies[c.Name]; !dup {
			req.Cookies[c.Name] = c.Value
		}
	}
	return req
}

// call POSTs body and decodes the answer.
func (h *Hook) call(ctx context.Context, body []byte) (*Answer, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, h.fail("%v", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(hreq)
	if err != nil {
		return nil, h.fail("%v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, int64(h.cfg.MaxResponseBytes)+1))
	if err != nil {
		return nil, h.fail("reading the answer: %v", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return &Answer{Allow: false, Reason: "refused by the application"}, nil
	case resp.StatusCode != http.StatusOK:
		return nil, h.fail("answered %s", resp.Status)
	case len(raw) > h.cfg.MaxResponseBytes:
		return nil, h.fail("answer larger than %d bytes", h.cfg.MaxResponseBytes)
	}
	var ans Answer
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&ans); err != nil {
		return nil, h.fail("answer is not the JSON of an Answer: %v", err)
	}
	return &ans, nil
}

// claims turns an answer into what the configuration allows of it; nil:
// refused.
func (h *Hook) claims(action string, r *server.HookRequest, ans *Answer, key [32]byte) *hub.Claims {
	if !ans.Allow {
		return nil
	}
	c := &hub.Claims{Identity: fmt.Sprintf("authhook:%x", key[:8])}
	if r.Publish {
		c.Publish = h.bound(action, ans.PublishTopics, h.cfg.PublishTopics)
	} else {
		c.Subscribe = h.bound(action, ans.PrivateTopics, h.cfg.PrivateTopics)
	}
	if len(ans.Payload) > 0 {
		p := bytes.TrimSpace(ans.Payload)
		if len(p) > h.cfg.MaxPayloadBytes || p[0] != '{' {
			h.m.dropped(action, 1)
		} else {
			c.Payload = append(json.RawMessage(nil), p...)
		}
	}
	return c
}

// bound keeps the granted selectors under an allowed prefix, at most
// MaxGrants of them.
func (h *Hook) bound(action string, granted, allowed []string) []string {
	var out []string
	dropped := 0
	for _, g := range granted {
		if len(out) < MaxGrants && g != "" && underPrefix(g, allowed) {
			out = append(out, g)
			continue
		}
		dropped++
	}
	h.m.dropped(action, dropped)
	return out
}

func underPrefix(sel string, allowed []string) bool {
	for _, p := range allowed {
		if p == "*" || (sel != "*" && p != "" && strings.HasPrefix(sel, p)) {
			return true
		}
	}
	return false
}

func (h *Hook) cached(key [32]byte, now time.Time) (cached, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.cache[key]
	if ok && !now.Before(c.expires) {
		delete(h.cache, key)
		return c, false
	}
	return c, ok
}

// store caches c; when full, it first drops one entry (the map's first:
// any, in constant time).
func (h *Hook) store(key [32]byte, c cached) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.cache[key]; !ok && len(h.cache) >= h.cfg.CacheEntries {
		for k := range h.cache {
			delete(h.cache, k)
			break
		}
	}
	h.cache[key] = c
}

var _ server.AuthHook = (*Hook)(nil)
