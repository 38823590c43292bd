package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of the Config fields bounding key-set fetches.
const (
	defaultJWKSTimeout     = 5 * time.Second
	defaultMaxJWKSBytes    = 256 << 10
	defaultJWKSRefresh     = 15 * time.Minute
	defaultJWKSMinInterval = time.Minute
	// maxJWKSKeys bounds the keys kept from one set: a token is checked
	// against every key of its algorithm when it names no kid.
	maxJWKSKeys = 32
)

// fetcher GETs issuers' metadata and key sets, bounded in time and size.
type fetcher struct {
	client      *http.Client
	timeout     time.Duration
	maxBytes    int64
	refresh     time.Duration
	minInterval time.Duration
	log         *slog.Logger
}

func newFetcher(cfg Config) *fetcher {
	f := &fetcher{
		client:      cfg.HTTPClient,
		timeout:     cfg.JWKSTimeout,
		maxBytes:    cfg.MaxJWKSBytes,
		refresh:     cfg.JWKSRefresh,
		minInterval: cfg.JWKSMinInterval,
		log:         cfg.Logger,
	}
	if f.timeout <= 0 {
		f.timeout = defaultJWKSTimeout
	}
	if f.maxBytes <= 0 {
		f.maxBytes = defaultMaxJWKSBytes
	}
	if f.refresh <= 0 {
		f.refresh = defaultJWKSRefresh
	}
	if f.minInterval <= 0 {
		f.minInterval = defaultJWKSMinInterval
	}
	if f.client == nil {
		f.client = &http.Client{
			Timeout: f.timeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("more than 3 redirects")
				}
				if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
					return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
				}
				return nil
			},
		}
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// getJSON fetches u into v: 200 only, at most maxBytes, within timeout.
func (f *fetcher) getJSON(u string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusError{code: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return err
	}
	if int64(len(body)) > f.maxBytes {
		return fmt.Errorf("response larger than %d bytes", f.maxBytes)
	}
	return json.Unmarshal(body, v)
}

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

// jwksSource is one issuer's key set: fetched when first needed, again
// when older than refresh or when a token names a kid it lacks, but never
// more often than minInterval, and by one caller at a time. A failed fetch
// keeps the keys of the last good one.
type jwksSource struct {
	issuer   string
	jwksURL  string // fixed, or "" to discover
	discover bool
	f        *fetcher
	now      func() time.Time

	mu       sync.Mutex
	set      []*Key        // guarded by mu
	fetched  time.Time     // guarded by mu: last good fetch
	tried    time.Time     // guarded by mu: last attempt
	inflight chan struct{} // guarded by mu: closed when the running fetch ends
}

func newJWKSSource(is Issuer, f *fetcher, now func() time.Time) (*jwksSource, error) {
	check := is.JWKSURL
	if is.Discover {
		check = is.ID
	}
	u, err := url.Parse(check)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: issuer %q: %q is not an http(s) URL", ErrBadConfig, is.ID, check)
	}
	return &jwksSource{issuer: is.ID, jwksURL: is.JWKSURL, discover: is.Discover, f: f, now: now}, nil
}

// keys returns the set's keys, fetching first when there are none yet,
// when they are stale, or when kid is set and none has it, as far as
// minInterval allows. The error is the last fetch's when there are no
// keys at all.
func (s *jwksSource) keys(kid string) ([]*Key, error) {
	s.mu.Lock()
	now := s.now()
	stale := s.fetched.IsZero() || now.Sub(s.fetched) >= s.f.refresh
	missing := kid != "" && !hasKid(s.set, kid)
	if (stale || missing) && s.inflight == nil && (s.tried.IsZero() || now.Sub(s.tried) >= s.f.minInterval) {
		done := make(chan struct{})
		s.inflight, s.tried = done, now
		s.mu.Unlock()
		set, err := s.fetch() // no lock held: others go on with the old keys
		s.mu.Lock()
		if err == nil {
			s.set, s.fetched = set, now
		} else {
			s.f.log.Warn("jwtauth: fetching the issuer's key set failed; keeping the previous keys", "issuer", s.issuer, "err", err)
		}
		s.inflight = nil
		close(done)
	} else if wait := s.inflight; wait != nil && (len(s.set) == 0 || missing) {
		// Nothing usable yet: wait for the running fetch, which the
		// fetcher's timeout bounds.
		s.mu.Unlock()
		<-wait
		s.mu.Lock()
	}
	set := s.set
	s.mu.Unlock()
	if len(set) == 0 {
		return nil, ErrJWKS
	}
	return set, nil
}

func hasKid(keys []*Key, kid string) bool {
	for _, k := range keys {
		if k.kid == kid {
			return true
		}
	}
	return false
}

// fetch reads the key set, discovering its URL first if configured so.
func (s *jwksSource) fetch() ([]*Key, error) {
	u := s.jwksURL
	if s.discover {
		var err error
		if u, err = s.discoverJWKS(); err != nil {
			return nil, fmt.Errorf("%w: discovery: %v", ErrJWKS, err)
		}
	}
	var set jwkSet
	if err := s.f.getJSON(u, &set); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrJWKS, u, err)
	}
	var keys []*Key
	for _, raw := range set.Keys {
		var j jwk
		if json.Unmarshal(raw, &j) != nil {
			continue
		}
		k, err := j.key("", false) // public keys only; unusable ones skipped
		if err != nil {
			continue
		}
		if keys = append(keys, k); len(keys) == maxJWKSKeys {
			break
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s holds no usable signing key", ErrJWKS, u)
	}
	return keys, nil
}

// metadata is the part of RFC 8414 (and OpenID Connect discovery)
// metadata used here.
type metadata struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// discoverJWKS reads the issuer's metadata, RFC 8414 first, then OpenID
// Connect's location, and returns its jwks_uri.
func (s *jwksSource) discoverJWKS() (string, error) {
	id, _ := url.Parse(s.issuer) // checked by newJWKSSource
	rfc8414 := *id
	rfc8414.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(id.Path, "/")
	rfc8414.RawPath, rfc8414.RawQuery, rfc8414.Fragment = "", "", ""
	oidc := strings.TrimSuffix(s.issuer, "/") + "/.well-known/openid-configuration"
	var lastErr error
	for _, u := range []string{rfc8414.String(), oidc} {
		var m metadata
		err := s.f.getJSON(u, &m)
		var se *statusError
		if errors.As(err, &se) && se.code == http.StatusNotFound {
			lastErr = err
			continue
		}
		if err != nil {
			return "", fmt.Errorf("%s: %v", u, err)
		}
		if m.Issuer != s.issuer { // RFC 8414 §3.3: a mismatch must not be used
			return "", fmt.Errorf("%s names issuer %q, not %q", u, truncate(m.Issuer), s.issuer)
		}
		j, err := url.Parse(m.JWKSURI)
		if err != nil || (j.Scheme != "https" && j.Scheme != "http") || j.Host == "" {
			return "", fmt.Errorf("%s: jwks_uri %q is not an http(s) URL", u, truncate(m.JWKSURI))
		}
		return m.JWKSURI, nil
	}
	return "", lastErr
}
