// Package jwtauth verifies and mints the JSON Web Tokens of the Mercure
// protocol on github.com/golang-jwt/jwt/v5. Its Authenticator implements
// hub.Authenticator.
//
// It speaks both generations of Mercure tokens, chosen per token:
//
//   - A draft-08 access token (RFC 9068): header "typ" "at+jwt", signed by
//     a configured issuer's key, with "iss", "aud" and "exp", granting what
//     its "authorization_details" of the Mercure type say:
//
//     {"iss":"https://app.example","aud":"https://hub.example/.well-known/mercure","exp":…,
//     "authorization_details":[{"type":"https://mercure.rocks/authorization-detail",
//     "actions":["subscribe"],"topics":[{"match":"https://app.example/books/:id","match_type":"urlpattern"}],
//     "payload":{…}}]}
//
//     Every such token is validated strictly (see Config.Issuers): the
//     header, the issuer and its keys, the audience, the expiry, and every
//     Mercure detail; one bad detail refuses the whole token.
//
//   - A draft-07 token, one with no authorization_details: it grants what
//     its "mercure" claim says and is verified with Config.PublisherKey or
//     Config.SubscriberKey, as before:
//
//     {"mercure":{"publish":["…"],"subscribe":["…"],"payload":…},"exp":…}
//
//     publish and subscribe are arrays of topic selectors, payload is any
//     JSON value. Such a token with no mercure claim is valid and grants
//     nothing.
//
// What is refused, with an error wrapping hub.ErrUnauthorized and a
// one-line reason: a missing or malformed token, a bad signature, an
// algorithm other than the keys' (so "none" and algorithm confusion are
// refused), a token past its "exp", before its "nbf", or issued ("iat") in
// the future (the last three allow Config.Leeway of clock skew), an
// unsupported "crit" header, and any spelling but the one canonical one:
// segments are decoded strictly (no padding, no non-zero trailing bits,
// nothing outside the base64url alphabet), so a signature cannot be respelt
// into a "new" token. Claims.Identity names a token by what its signature
// covers, for per-token limits.
//
// Keys come only from configuration or from an issuer's JWKS (Issuer),
// never from a token's "jwk", "jku", "x5u" or "x5c" headers.
package jwtauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	// ErrBadConfig means a Config that New cannot use (wrapped with why).
	ErrBadConfig = errors.New("jwtauth: bad configuration")
	// ErrJWKS means an issuer's key set could not be fetched or read
	// (wrapped with why); tokens of that issuer are refused meanwhile.
	ErrJWKS = errors.New("jwtauth: key set unavailable")
)

// DefaultLeeway is the clock skew allowed on exp, nbf and iat when
// Config.Leeway is zero: small enough that an expired token is not usable
// for long, large enough for clocks kept by NTP.
const DefaultLeeway = 5 * time.Second

// Limits on an access token's authorization details, as Mercure's: beyond
// them the token is refused, so one token cannot cost the hub more.
const (
	// MaxDetails is the most authorization details a token may hold
	// (of any type).
	MaxDetails = 100
	// MaxDetailTopics is the most topic matchers, summed over a token's
	// Mercure details.
	MaxDetailTopics = 100
	// MaxMatchBytes is the longest "match" of a topic matcher.
	MaxMatchBytes = 4096
)

// MercureDetailType is the "type" of Mercure authorization details.
const MercureDetailType = "https://mercure.rocks/authorization-detail"

// Config configures New. Its zero value is not usable: at least one key
// or issuer is needed.
type Config struct {
	// PublisherKey verifies draft-07 publishers' tokens. When nil,
	// SubscriberKey is used for publishers too.
	PublisherKey *Key
	// SubscriberKey verifies draft-07 subscribers' tokens. When nil,
	// PublisherKey is used for subscribers too. With neither, draft-07
	// tokens are refused.
	SubscriberKey *Key
	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means
	// DefaultLeeway; a negative value means none.
	Leeway time.Duration
	// RequireExp refuses draft-07 tokens without an exp claim. Default
	// false, as in Mercure: such a token never expires. Access tokens
	// always need exp.
	RequireExp bool

	// Issuers are the authorization servers and self-issuing publishers
	// whose draft-08 access tokens are accepted, each with its own keys:
	// a token is verified only with the keys of the issuer its "iss"
	// names, byte for byte.
	Issuers []Issuer
	// Resource is the hub's resource identifier (usually its URL,
	// https://hub.example/.well-known/mercure): an access token's "aud"
	// must contain it. Required with Issuers.
	Resource string
	// ValidateMatcher, when set, checks every topic matcher of an access
	// token after its type is known to be "exact" or "urlpattern" (the
	// hub compiles URL patterns with it); an error refuses the token. Nil
	// means only the type and the string rules are checked.
	ValidateMatcher func(hub.TokenMatcher) error

	// HTTPClient fetches issuers' metadata and key sets. Nil means a
	// client with a JWKSTimeout timeout that follows no redirects to
	// other schemes than http and https.
	HTTPClient *http.Client
	// JWKSTimeout bounds one fetch. Zero means 5 seconds.
	JWKSTimeout time.Duration
	// MaxJWKSBytes bounds a metadata or key-set response. Zero means
	// 256 KiB.
	MaxJWKSBytes int64
	// JWKSRefresh is how old fetched keys may get before they are fetched
	// again. Zero means 15 minutes.
	JWKSRefresh time.Duration
	// JWKSMinInterval is the least time between two fetches of one
	// issuer's keys, whatever tokens arrive (a token naming an unknown
	// "kid" asks for a fetch). Zero means 1 minute.
	JWKSMinInterval time.Duration
	// Logger receives failed key-set fetches. Nil means none.
	Logger *slog.Logger
}

// Issuer is one trusted issuer of access tokens and its keys: the keys
// given here, those of the JWKS at JWKSURL, or those of the JWKS its RFC
// 8414 metadata names when Discover is set.
type Issuer struct {
	// ID is the issuer identifier, a token's "iss".
	ID string
	// Keys verify both publishers' and subscribers' tokens.
	Keys []*Key
	// PublisherKeys verify publishers' tokens only; SubscriberKeys
	// subscribers' tokens only.
	PublisherKeys, SubscriberKeys []*Key
	// JWKSURL is a key set (RFC 7517 JWK Set) verifying both roles.
	JWKSURL string
	// Discover finds the key set's URL in the issuer's metadata: RFC 8414
	// (/.well-known/oauth-authorization-server inserted after the ID's
	// host), then OpenID Connect discovery (ID +
	// /.well-known/openid-configuration). The metadata's "issuer" must
	// equal ID.
	Discover bool
}

// Authenticator verifies Mercure tokens. It is safe for concurrent use.
//
// It remembers the tokens it accepted (up to cacheSize per role, each until
// its exp), so a publisher or subscriber presenting the same token again
// costs a map lookup instead of a signature check and a JSON decode. The
// Claims it returns are shared between those calls and must not be
// modified.
type Authenticator struct {
	legacy     [2]*Key // draft-07 keys by role; nil: refused
	issuers    map[string]*issuer
	resource   string
	validate   func(hub.TokenMatcher) error
	leeway     time.Duration
	requireExp bool
	now        func() time.Time
	parser     *jwt.Parser // safe for concurrent use once built

	publisher  *verifier
	subscriber *verifier
}

// role is whose token is verified: keys can differ per role.
type role int

const (
	publisherRole role = iota
	subscriberRole
)

// New returns an Authenticator for cfg, or an error if cfg has no key or
// issuer or an issuer is misconfigured.
func New(cfg Config) (*Authenticator, error) {
	return newAuthenticator(cfg, time.Now)
}

func newAuthenticator(cfg Config, now func() time.Time) (*Authenticator, error) {
	pub, sub := cfg.PublisherKey, cfg.SubscriberKey
	if pub == nil {
		pub = sub
	}
	if sub == nil {
		sub = pub
	}
	if pub == nil && len(cfg.Issuers) == 0 {
		return nil, fmt.Errorf("%w: neither a publisher nor a subscriber key nor an issuer is set", ErrNoKey)
	}
	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	a := &Authenticator{
		legacy:     [2]*Key{publisherRole: pub, subscriberRole: sub},
		issuers:    make(map[string]*issuer),
		resource:   cfg.Resource,
		validate:   cfg.ValidateMatcher,
		leeway:     leeway,
		requireExp: cfg.RequireExp,
		now:        now,
		// Claims are validated after the signature, by the rules of
		// the token's generation (validate07, validate08).
		parser: jwt.NewParser(
			// One spelling per token: no padding, no non-zero trailing
			// bits (the CR and LF the decoder would still skip are
			// refused by checkSpelling before parsing).
			jwt.WithStrictDecoding(),
			jwt.WithoutClaimsValidation(),
		),
	}
	if len(cfg.Issuers) > 0 && cfg.Resource == "" {
		return nil, fmt.Errorf("%w: issuers need a resource identifier (the aud their tokens carry)", ErrBadConfig)
	}
	fetch := newFetcher(cfg)
	for _, is := range cfg.Issuers {
		if is.ID == "" {
			return nil, fmt.Errorf("%w: an issuer without an ID", ErrBadConfig)
		}
		if _, dup := a.issuers[is.ID]; dup {
			return nil, fmt.Errorf("%w: issuer %q configured twice", ErrBadConfig, is.ID)
		}
		in := &issuer{id: is.ID}
		in.keys[publisherRole] = append(append([]*Key(nil), is.Keys...), is.PublisherKeys...)
		in.keys[subscriberRole] = append(append([]*Key(nil), is.Keys...), is.SubscriberKeys...)
		if is.JWKSURL != "" || is.Discover {
			if is.JWKSURL != "" && is.Discover {
				return nil, fmt.Errorf("%w: issuer %q has both a JWKS URL and discovery", ErrBadConfig, is.ID)
			}
			src, err := newJWKSSource(is, fetch, now)
			if err != nil {
				return nil, err
			}
			in.jwks = src
		}
		if len(in.keys[publisherRole]) == 0 && len(in.keys[subscriberRole]) == 0 && in.jwks == nil {
			return nil, fmt.Errorf("%w: issuer %q has no keys and no key set", ErrNoKey, is.ID)
		}
		a.issuers[is.ID] = in
	}
	a.publisher = &verifier{a: a, role: publisherRole, accepted: make(map[string]acceptedToken)}
	a.subscriber = &verifier{a: a, role: subscriberRole, accepted: make(map[string]acceptedToken)}
	return a, nil
}

// VerifyPublisher checks a publisher's token.
func (a *Authenticator) VerifyPublisher(token string) (*hub.Claims, error) {
	return a.publisher.verify(token)
}

// VerifySubscriber checks a subscriber's token.
func (a *Authenticator) VerifySubscriber(token string) (*hub.Claims, error) {
	return a.subscriber.verify(token)
}

// issuer is one trusted issuer's keys by role, and its key set if any.
type issuer struct {
	id   string
	keys [2][]*Key
	jwks *jwksSource // nil: configured keys only
}

// cacheSize bounds the accepted tokens a verifier remembers.
const cacheSize = 4096

// verifier is the cache of accepted tokens of one role.
type verifier struct {
	a    *Authenticator
	role role

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

// tokenClaims is the JSON layout of a token's claims, of either
// generation.
type tokenClaims struct {
	Mercure *mercureClaim   `json:"mercure,omitempty"`
	Details json.RawMessage `json:"authorization_details,omitempty"`
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
	now := v.a.now()
	v.mu.Lock()
	a, ok := v.accepted[token]
	if ok && !a.until.IsZero() && !now.Before(a.until) {
		delete(v.accepted, token) // expired: verify refuses it, with the reason
		ok = false
	}
	v.mu.Unlock()
	if ok {
		return a.claims, nil
	}
	c, err := v.a.parse(token, v.role)
	if err != nil {
		return nil, err
	}
	a = acceptedToken{claims: c}
	if !c.ExpiresAt.IsZero() {
		a.until = c.ExpiresAt.Add(v.a.leeway)
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

// parse checks token's signature and claims by the rules of its
// generation: an access token's when it has authorization_details (or is
// typed at+jwt with no mercure claim), draft-07's otherwise.
func (a *Authenticator) parse(token string, r role) (*hub.Claims, error) {
	var (
		tc     tokenClaims
		access bool
	)
	t, err := a.parser.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		// RFC 7515 §4.1.11: extensions listed in "crit" must be
		// understood; we understand none.
		if _, ok := t.Header["crit"]; ok {
			return nil, errCrit
		}
		access = tc.Details != nil || (tc.Mercure == nil && isAccessTokenType(t.Header["typ"]))
		if access {
			return a.accessKeys(t, &tc, r)
		}
		return a.legacyKey(t, r)
	})
	if err != nil {
		return nil, unauthorized(reason(t, err))
	}
	var c *hub.Claims
	if access {
		c, err = a.claims08(&tc)
	} else {
		c, err = a.claims07(&tc)
	}
	if err != nil {
		return nil, err
	}
	if tc.ExpiresAt != nil {
		c.ExpiresAt = tc.ExpiresAt.Time
	}
	c.Identity = identity(token)
	return c, nil
}

// legacyKey is the draft-07 key of role r, if it fits the token's
// algorithm.
func (a *Authenticator) legacyKey(t *jwt.Token, r role) (any, error) {
	k := a.legacy[r]
	if k == nil {
		return nil, errNoLegacyKey
	}
	if t.Method.Alg() != k.Alg() {
		return nil, &algError{alg: t.Method.Alg()}
	}
	return k.verify, nil
}

// accessKeys checks an access token's header and issuer and returns the
// issuer's keys of role r that fit its algorithm (and its kid, if any).
func (a *Authenticator) accessKeys(t *jwt.Token, tc *tokenClaims, r role) (any, error) {
	if !isAccessTokenType(t.Header["typ"]) {
		return nil, errType
	}
	if tc.Issuer == "" {
		return nil, errNoIssuer
	}
	in := a.issuers[tc.Issuer]
	if in == nil {
		return nil, errIssuer
	}
	kid, _ := t.Header["kid"].(string)
	alg := t.Method.Alg()
	pick := func(keys []*Key) []jwt.VerificationKey {
		var out []jwt.VerificationKey
		for _, k := range keys {
			if k.Alg() == alg && (kid == "" || k.kid == "" || k.kid == kid) {
				out = append(out, k.verify)
			}
		}
		return out
	}
	keys := pick(in.keys[r])
	if in.jwks != nil {
		jk, err := in.jwks.keys(kid)
		keys = append(keys, pick(jk)...)
		if len(keys) == 0 && err != nil {
			return nil, errKeySet
		}
	}
	if len(keys) == 0 {
		return nil, &algError{alg: alg, issuer: true}
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

// isAccessTokenType reports whether a "typ" header is RFC 9068's
// at+jwt, case-insensitive, with or without "application/".
func isAccessTokenType(typ any) bool {
	s, ok := typ.(string)
	if !ok {
		return false
	}
	s = strings.ToLower(s)
	return s == "at+jwt" || s == "application/at+jwt"
}

// claims07 validates a draft-07 token's registered claims and returns
// what its mercure claim grants.
func (a *Authenticator) claims07(tc *tokenClaims) (*hub.Claims, error) {
	opts := []jwt.ParserOption{jwt.WithLeeway(a.leeway), jwt.WithIssuedAt(), jwt.WithTimeFunc(a.now)}
	if a.requireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if err := jwt.NewValidator(opts...).Validate(tc); err != nil {
		return nil, unauthorized(reason(nil, err))
	}
	c := &hub.Claims{}
	if m := tc.Mercure; m != nil {
		c.Publish = m.Publish
		c.Subscribe = m.Subscribe
		if p := m.Payload; len(p) > 0 && string(p) != "null" {
			c.Payload = p
		}
	}
	return c, nil
}

// claims08 validates an access token's registered claims (exp required,
// aud containing the resource, nbf and iat) and its authorization
// details, all or nothing.
func (a *Authenticator) claims08(tc *tokenClaims) (*hub.Claims, error) {
	v := jwt.NewValidator(jwt.WithLeeway(a.leeway), jwt.WithIssuedAt(), jwt.WithTimeFunc(a.now),
		jwt.WithExpirationRequired(), jwt.WithAudience(a.resource))
	if err := v.Validate(tc); err != nil {
		return nil, unauthorized(reason(nil, err))
	}
	c := &hub.Claims{AccessToken: true}
	if tc.Details != nil { // absent: an at+jwt token granting nothing
		details, err := parseDetails(tc.Details, a.validate)
		if err != nil {
			return nil, unauthorized("invalid authorization_details: " + err.Error())
		}
		c.Details = details
	}
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

var (
	errCrit        = errors.New("crit header")
	errNoLegacyKey = errors.New("no draft-07 key")
	errType        = errors.New("typ")
	errNoIssuer    = errors.New("no iss")
	errIssuer      = errors.New("untrusted iss")
	errKeySet      = errors.New("key set unavailable")
)

// algError is a token algorithm no configured key has.
type algError struct {
	alg    string
	issuer bool // among the keys of the token's issuer
}

func (e *algError) Error() string { return "algorithm " + e.alg }

// reason turns a jwt error into a short reason for the client.
func reason(t *jwt.Token, err error) string {
	var ae *algError
	switch {
	case errors.Is(err, errCrit):
		return "unsupported critical header"
	case errors.Is(err, errNoLegacyKey):
		return "draft-07 tokens are not accepted (no key): use an access token with authorization_details"
	case errors.Is(err, errType):
		return `an access token (authorization_details) needs the header "typ": "at+jwt"`
	case errors.Is(err, errNoIssuer):
		return "access token has no iss"
	case errors.Is(err, errIssuer):
		return "access token issuer not trusted"
	case errors.Is(err, errKeySet):
		return "the issuer's key set is unavailable"
	case errors.As(err, &ae):
		if ae.issuer {
			return "no key of the issuer for " + algName(ae.alg) + " (or this kid)"
		}
		return algNotAccepted(ae.alg)
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
		if strings.Contains(err.Error(), "aud claim") {
			return "token has no audience (aud)"
		}
		return "token has no expiry"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token audience does not name this hub"
	}
	return "invalid token"
}

// algNotAccepted names the token's algorithm, quoted so that a hostile
// header cannot break the one-line reason, and only when it is short.
func algNotAccepted(alg string) string {
	if len(alg) > 10 {
		return "algorithm not accepted"
	}
	return "algorithm " + algName(alg) + " not accepted"
}

func algName(alg string) string {
	if len(alg) > 10 {
		return "its algorithm"
	}
	return fmt.Sprintf("%q", alg)
}

func unauthorized(reason string) error {
	return fmt.Errorf("%w: %s", hub.ErrUnauthorized, strings.TrimSpace(reason))
}

var _ hub.Authenticator = (*Authenticator)(nil)
