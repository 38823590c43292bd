// Package jwtauth verifies and mints the JSON Web Tokens of the Mercure
// protocol on github.com/golang-jwt/jwt/v5. Its Authenticator implements
// hub.Authenticator.
//
// A token grants what its "mercure" claim says:
//
//	{"mercure":{"publish":["…"],"subscribe":["…"],"payload":…},"exp":…}
//
// publish and subscribe are arrays of topic selectors, payload is any JSON
// value. A token with no mercure claim is valid and grants nothing: the
// server then refuses to publish (403) and delivers no private updates.
//
// What is refused, with an error wrapping hub.ErrUnauthorized and a
// one-line reason: a missing or malformed token, a bad signature, an
// algorithm other than the configured key's (so "none" and algorithm
// confusion are refused), a token past its "exp", before its "nbf", or
// issued ("iat") in the future (the last three allow Config.Leeway of clock
// skew), and any spelling but the one canonical one: segments are decoded
// strictly (no padding, no non-zero trailing bits, nothing outside the
// base64url alphabet), so a signature cannot be respelt into a "new"
// token. Claims.Identity names a token by what its signature covers, for
// per-token limits.
package jwtauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ssekit/sse/hub"
)

// Errors about keys and configuration. Errors about tokens wrap
// hub.ErrUnauthorized instead.
var (
	// ErrNoKey means no key material was given.
	ErrNoKey = errors.New("jwtauth: no key")
	// ErrUnsupportedAlg means an algorithm outside HS*, RS*, PS*, ES*
	// (including "none").
	ErrUnsupportedAlg = errors.New("jwtauth: unsupported algorithm")
	// ErrKeyMismatch means the key material does not fit the algorithm.
	ErrKeyMismatch = errors.New("jwtauth: key does not fit the algorithm")
	// ErrShortSecret means an HMAC secret shorter than its hash.
	ErrShortSecret = errors.New("jwtauth: HMAC secret too short")
	// ErrWeakKey means an RSA key under MinRSABits.
	ErrWeakKey = errors.New("jwtauth: RSA key too small")
	// ErrCannotSign means Sign was given a key with no private material.
	ErrCannotSign = errors.New("jwtauth: key cannot sign")
)

// DefaultLeeway is the clock skew allowed on exp, nbf and iat when
// Config.Leeway is zero: small enough that an expired token is not usable
// for long, large enough for clocks kept by NTP.
const DefaultLeeway = 5 * time.Second

// Config configures New. Its zero value is not usable: at least one key is
// needed.
type Config struct {
	// PublisherKey verifies publishers' tokens. When nil, SubscriberKey
	// is used for publishers too.
	PublisherKey *Key
	// SubscriberKey verifies subscribers' tokens. When nil, PublisherKey
	// is used for subscribers too.
	SubscriberKey *Key
	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means
	// DefaultLeeway; a negative value means none.
	Leeway time.Duration
	// RequireExp refuses tokens without an exp claim. Default false, as
	// in Mercure: a token without exp never expires.
	RequireExp bool
}

// Authenticator verifies Mercure tokens. It is safe for concurrent use.
//
// It remembers the tokens it accepted (up to cacheSize per role, each until
// its exp), so a publisher or subscriber presenting the same token again
// costs a map lookup instead of a signature check and a JSON decode. The
// Claims it returns are shared between those calls and must not be
// modified.
type Authenticator struct {
	publisher  *verifier
	subscriber *verifier
}

// New returns an Authenticator for cfg, or an error if cfg has no key.
func New(cfg Config) (*Authenticator, error) {
	pub, sub := cfg.PublisherKey, cfg.SubscriberKey
	if pub == nil {
		pub = sub
	}
	if sub == nil {
		sub = pub
	}
	if pub == nil {
		return nil, fmt.Errorf("%w: neither a publisher nor a subscriber key is set", ErrNoKey)
	}
	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	return &Authenticator{
		publisher:  newVerifier(pub, leeway, cfg.RequireExp, time.Now),
		subscriber: newVerifier(sub, leeway, cfg.RequireExp, time.Now),
	}, nil
}

// VerifyPublisher checks a publisher's token with the publisher key.
func (a *Authenticator) VerifyPublisher(token string) (*hub.Claims, error) {
	return a.publisher.verify(token)
}

// VerifySubscriber checks a subscriber's token with the subscriber key.
func (a *Authenticator) VerifySubscriber(token string) (*hub.Claims, error) {
	return a.subscriber.verify(token)
}

// cacheSize bounds the accepted tokens a verifier remembers.
const cacheSize = 4096

// verifier checks tokens against one key.
type verifier struct {
	key    *Key
	parser *jwt.Parser // safe for concurrent use once built
	leeway time.Duration
	now    func() time.Time

	mu       sync.Mutex
	accepted map[string]acceptedToken // guarded by mu
}

// acceptedToken is a verified token's claims and when verify would start
// refusing it (zero: never). nbf and iat cannot turn an accepted token
// invalid later; only exp can.
type acceptedToken struct {
	claims *hub.Claims
	until  time.Time
}

func newVerifier(k *Key, leeway time.Duration, requireExp bool, now func() time.Time) *verifier {
	opts := []jwt.ParserOption{
		// Only the key's own algorithm: this refuses "none" and every
		// cross-family confusion before any signature check.
		jwt.WithValidMethods([]string{k.Alg()}),
		// One spelling per token: no padding, no non-zero trailing bits
		// (the CR and LF the decoder would still skip are refused by
		// checkSpelling before parsing).
		jwt.WithStrictDecoding(),
		jwt.WithLeeway(leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	}
	if requireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	return &verifier{key: k, parser: jwt.NewParser(opts...), leeway: leeway, now: now, accepted: make(map[string]acceptedToken)}
}

// tokenClaims is the JSON layout of a Mercure token's claims.
type tokenClaims struct {
	Mercure *mercureClaim `json:"mercure,omitempty"`
	jwt.RegisteredClaims
}

type mercureClaim struct {
	Publish   []string        `json:"publish,omitempty"`
	Subscribe []string        `json:"subscribe,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
}

// verify returns the claims of token, from the cache of accepted tokens
// when it is there and not expired.
func (v *verifier) verify(token string) (*hub.Claims, error) {
	if token == "" {
		return nil, unauthorized("missing token")
	}
	if err := checkSpelling(token); err != nil {
		return nil, err
	}
	v.mu.Lock()
	a, ok := v.accepted[token]
	if ok && !a.until.IsZero() && !v.now().Before(a.until) {
		delete(v.accepted, token) // expired: verify refuses it, with the reason
		ok = false
	}
	v.mu.Unlock()
	if ok {
		return a.claims, nil
	}
	c, err := v.parse(token)
	if err != nil {
		return nil, err
	}
	a = acceptedToken{claims: c}
	if !c.ExpiresAt.IsZero() {
		a.until = c.ExpiresAt.Add(v.leeway)
	}
	v.mu.Lock()
	if len(v.accepted) >= cacheSize {
		for k := range v.accepted { // any one: the map is a bound, not an LRU
			delete(v.accepted, k)
			break
		}
	}
	v.accepted[token] = a
	v.mu.Unlock()
	return c, nil
}

// parse checks token's signature and claims.
func (v *verifier) parse(token string) (*hub.Claims, error) {
	var tc tokenClaims
	t, err := v.parser.ParseWithClaims(token, &tc, v.keyFunc)
	if err != nil {
		return nil, unauthorized(v.reason(t, err))
	}
	c := &hub.Claims{}
	if m := tc.Mercure; m != nil {
		c.Publish = m.Publish
		c.Subscribe = m.Subscribe
		if p := m.Payload; len(p) > 0 && string(p) != "null" {
			c.Payload = p
		}
	}
	if tc.ExpiresAt != nil {
		c.ExpiresAt = tc.ExpiresAt.Time
	}
	c.Identity = identity(token)
	return c, nil
}

// MaxTokenBytes is the longest token accepted: far above any real one
// (a token with the most authorization details the limits allow), so
// that a client cannot make the hub decode megabytes per request.
const MaxTokenBytes = 16 << 10

// checkSpelling refuses a token that is too long or holds a byte outside
// the base64url alphabet and the two dots of JWS compact serialisation:
// the standard decoder skips CR and LF even in strict mode, which would
// give one token many spellings.
func checkSpelling(token string) error {
	if len(token) > MaxTokenBytes {
		return unauthorized(fmt.Sprintf("token longer than %d bytes", MaxTokenBytes))
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return unauthorized("malformed token: a character outside base64url")
		}
	}
	return nil
}

// identity names a verified token by what its signature covers, the
// header and claims segments: strict decoding gives each exactly one
// spelling, so however a holder respells the signature (or re-signs the
// same claims with a randomised ECDSA signature) it is one identity.
func identity(token string) string {
	signed := token[:strings.LastIndexByte(token, '.')]
	sum := sha256.Sum256([]byte(signed))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (v *verifier) keyFunc(t *jwt.Token) (any, error) {
	// WithValidMethods already refused other algorithms; checked again
	// here so that the key never meets a method it was not made for.
	if t.Method.Alg() != v.key.Alg() {
		return nil, errAlgorithm
	}
	// RFC 7515 §4.1.11: extensions listed in "crit" must be understood;
	// we understand none.
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	return v.key.verify, nil
}

var (
	errAlgorithm = errors.New("algorithm mismatch")
	errCrit      = errors.New("crit header")
)

// reason turns a jwt error into a short reason for the client.
func (v *verifier) reason(t *jwt.Token, err error) string {
	switch {
	case errors.Is(err, errCrit):
		return "unsupported critical header"
	case t != nil && t.Method != nil && t.Method.Alg() != v.key.Alg():
		return algNotAccepted(t.Method.Alg())
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		if t != nil && t.Method == nil {
			if alg, ok := t.Header["alg"].(string); ok {
				return algNotAccepted(alg)
			}
			return "token has no algorithm"
		}
		return "unverifiable token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "invalid signature"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no expiry"
	}
	return "invalid token"
}

// algNotAccepted names the token's algorithm, quoted so that a hostile
// header cannot break the one-line reason, and only when it is short.
func algNotAccepted(alg string) string {
	if len(alg) > 10 {
		return "algorithm not accepted"
	}
	return fmt.Sprintf("algorithm %q not accepted", alg)
}

func unauthorized(reason string) error {
	return fmt.Errorf("%w: %s", hub.ErrUnauthorized, strings.TrimSpace(reason))
}

var _ hub.Authenticator = (*Authenticator)(nil)
