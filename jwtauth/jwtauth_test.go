package jwtauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
)

// Keys are generated once per test binary: RSA generation is slow.
var (
	testRSA = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	testEC256 = sync.OnceValue(func() *ecdsa.PrivateKey { return genEC(elliptic.P256()) })
	testEC384 = sync.OnceValue(func() *ecdsa.PrivateKey { return genEC(elliptic.P384()) })
)

func genEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

const (
	pubSecret   = "publisher-secret-0123456789abcdefghij"
	subSecret   = "subscriber-secret-0123456789abcdefghij"
	otherSecret = "some-other-secret-0123456789abcdefghij"
)

func mustKey(t *testing.T, alg string, key any) *jwtauth.Key {
	t.Helper()
	k, err := jwtauth.NewKey(alg, key)
	if err != nil {
		t.Fatalf("NewKey(%s): %v", alg, err)
	}
	return k
}

func pemBytes(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkixPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes(t, "PUBLIC KEY", der)
}

// raw signs claims with any jwt method and key, bypassing jwtauth's own
// checks, the way an attacker would.
func raw(t *testing.T, m jwt.SigningMethod, key any, claims jwt.Claims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing %s: %v", m.Alg(), err)
	}
	return s
}

func mercure(publish, subscribe []string, extra jwt.MapClaims) jwt.MapClaims {
	m := jwt.MapClaims{"mercure": map[string]any{"publish": publish, "subscribe": subscribe}}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestVerify(t *testing.T) {
	now := time.Now()
	rsaKey, ec256, ec384 := testRSA(), testEC256(), testEC384()
	rsaPubPEM := pkixPEM(t, &rsaKey.PublicKey)

	hsPub := mustKey(t, "HS256", pubSecret)
	hsSub := mustKey(t, "HS256", subSecret)
	rsPub := mustKey(t, "RS256", &rsaKey.PublicKey)
	psPub := mustKey(t, "PS256", &rsaKey.PublicKey)
	esPub := mustKey(t, "ES256", &ec256.PublicKey)

	hs := jwtauth.Config{PublisherKey: hsPub, SubscriberKey: hsSub}
	all := mercure([]string{"https://example.com/books/{id}"}, []string{"*"}, nil)

	type verifyFunc int
	const (
		publisher verifyFunc = iota
		subscriber
	)
	tests := []struct {
		name  string
		cfg   jwtauth.Config
		as    verifyFunc
		token string
		// want is nil for a refusal; reason is then a substring of the error.
		want   *hub.Claims
		reason string
	}{
		{
			name:  "HS256 publisher ok",
			cfg:   hs,
			token: raw(t, jwt.SigningMethodHS256, []byte(pubSecret), all, nil),
			want:  &hub.Claims{Publish: []string{"https://example.com/books/{id}"}, Subscribe: []string{"*"}},
		},
		{
			name:  "HS256 subscriber ok",
			cfg:   hs,
			as:    subscriber,
			token: raw(t, jwt.SigningMethodHS256, []byte(subSecret), all, nil),
			want:  &hub.Claims{Publish: []string{"https://example.com/books/{id}"}, Subscribe: []string{"*"}},
		},
		{
			name:   "subscriber token refused as publisher",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodHS256, []byte(subSecret), all, nil),
			reason: "invalid signature",
		},
		{
			name:   "publisher token refused as subscriber",
			cfg:    hs,
			as:     subscriber,
			token:  raw(t, jwt.SigningMethodHS256, []byte(pubSecret), all, nil),
			reason: "invalid signature",
		},
		{
			name:  "publisher key alone serves subscribers",
			cfg:   jwtauth.Config{PublisherKey: hsPub},
			as:    subscriber,
			token: raw(t, jwt.SigningMethodHS256, []byte(pubSecret), all, nil),
			want:  &hub.Claims{Publish: []string{"https://example.com/books/{id}"}, Subscribe: []string{"*"}},
		},
		{
			name:  "subscriber key alone serves publishers",
			cfg:   jwtauth.Config{SubscriberKey: hsSub},
			token: raw(t, jwt.SigningMethodHS256, []byte(subSecret), all, nil),
			want:  &hub.Claims{Publish: []string{"https://example.com/books/{id}"}, Subscribe: []string{"*"}},
		},
		{
			name:   "HS256 wrong secret",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodHS256, []byte(otherSecret), all, nil),
			reason: "invalid signature",
		},
		{
			name:   "HS384 token for an HS256 key",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodHS384, []byte(pubSecret+"0123456789abcdef"), all, nil),
			reason: `algorithm "HS384" not accepted`,
		},
		{
			name:   "alg none",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, all, nil),
			reason: `algorithm "none" not accepted`,
		},
		{
			name:   "alg none with a signature appended",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, all, nil) + "c2ln",
			reason: `algorithm "none" not accepted`,
		},
		{
			name: "alg NONE upper case",
			cfg:  hs,
			token: func() string {
				// Not registered with jwt, so built by hand.
				s := raw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, all, nil)
				_, rest, _ := strings.Cut(s, ".")
				return "eyJhbGciOiJOT05FIiwidHlwIjoiSldUIn0." + rest // {"alg":"NONE","typ":"JWT"}
			}(),
			reason: `algorithm "NONE" not accepted`,
		},
		{
			name:   "confusion: HS256 signed with the RSA public key PEM, hub on RS256",
			cfg:    jwtauth.Config{PublisherKey: rsPub},
			token:  raw(t, jwt.SigningMethodHS256, rsaPubPEM, all, nil),
			reason: `algorithm "HS256" not accepted`,
		},
		{
			name:   "confusion: RS256 token, hub on HS256",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodRS256, rsaKey, all, nil),
			reason: `algorithm "RS256" not accepted`,
		},
		{
			name:   "confusion: PS256 token, hub on RS256",
			cfg:    jwtauth.Config{PublisherKey: rsPub},
			token:  raw(t, jwt.SigningMethodPS256, rsaKey, all, nil),
			reason: `algorithm "PS256" not accepted`,
		},
		{
			name:   "confusion: ES256 token, hub on RS256",
			cfg:    jwtauth.Config{PublisherKey: rsPub},
			token:  raw(t, jwt.SigningMethodES256, ec256, all, nil),
			reason: `algorithm "ES256" not accepted`,
		},
		{
			name:  "RS256 ok",
			cfg:   jwtauth.Config{PublisherKey: rsPub},
			token: raw(t, jwt.SigningMethodRS256, rsaKey, all, nil),
			want:  &hub.Claims{Publish: []string{"https://example.com/books/{id}"}, Subscribe: []string{"*"}},
		},
		{
			name:  "PS256 ok",
			cfg:   jwtauth.Config{PublisherKey: psPub},
			token: raw(t, jwt.SigningMethodPS256, rsaKey, all, nil),
			want:  &hub.Claims{Publish: []string{"https://example.com/books/{id}"}, Subscribe: []string{"*"}},
		},
		{
			name:  "ES256 ok",
			cfg:   jwtauth.Config{PublisherKey: esPub},
			token: raw(t, jwt.SigningMethodES256, ec256, all, nil),
			want:  &hub.Claims{Publish: []string{"https://example.com/books/{id}"}, Subscribe: []string{"*"}},
		},
		{
			name:   "ES256 signed by another key",
			cfg:    jwtauth.Config{PublisherKey: esPub},
			token:  raw(t, jwt.SigningMethodES256, genEC(elliptic.P256()), all, nil),
			reason: "invalid signature",
		},
		{
			name:   "ES384 token for an ES256 key",
			cfg:    jwtauth.Config{PublisherKey: esPub},
			token:  raw(t, jwt.SigningMethodES384, ec384, all, nil),
			reason: `algorithm "ES384" not accepted`,
		},
		{
			name:  "exp returned",
			cfg:   hs,
			token: raw(t, jwt.SigningMethodHS256, []byte(pubSecret), mercure([]string{"*"}, nil, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}), nil),
			want:  &hub.Claims{Publish: []string{"*"}, ExpiresAt: time.Unix(now.Add(time.Hour).Unix(), 0)},
		},
		{
			name:   "expired",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodHS256, []byte(pubSecret), mercure([]string{"*"}, nil, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}), nil),
			reason: "token expired",
		},
		{
			name:   "expired subscriber",
			cfg:    hs,
			as:     subscriber,
			token:  raw(t, jwt.SigningMethodHS256, []byte(subSecret), mercure(nil, []string{"*"}, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}), nil),
			reason: "token expired",
		},
		{
			name:  "expired within the default leeway",
			cfg:   hs,
			token: raw(t, jwt.SigningMethodHS256, []byte(pubSecret), mercure([]string{"*"}, nil, jwt.MapClaims{"exp": now.Add(-time.Second).Unix()}), nil),
			want:  &hub.Claims{Publish: []string{"*"}, ExpiresAt: time.Unix(now.Add(-time.Second).Unix(), 0)},
		},
		{
			name:   "expired with leeway disabled",
			cfg:    jwtauth.Config{PublisherKey: hsPub, Leeway: -1},
			token:  raw(t, jwt.SigningMethodHS256, []byte(pubSecret), mercure([]string{"*"}, nil, jwt.MapClaims{"exp": now.Add(-2 * time.Second).Unix()}), nil),
			reason: "token expired",
		},
		{
			name:   "not valid yet",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodHS256, []byte(pubSecret), mercure([]string{"*"}, nil, jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()}), nil),
			reason: "token not valid yet",
		},
		{
			name:  "nbf within the leeway",
			cfg:   hs,
			token: raw(t, jwt.SigningMethodHS256, []byte(pubSecret), mercure([]string{"*"}, nil, jwt.MapClaims{"nbf": now.Add(2 * time.Second).Unix()}), nil),
			want:  &hub.Claims{Publish: []string{"*"}},
		},
		{
			name:   "issued in the future",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodHS256, []byte(pubSecret), mercure([]string{"*"}, nil, jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}), nil),
			reason: "token issued in the future",
		},
		{
			name:   "no exp when required",
			cfg:    jwtauth.Config{PublisherKey: hsPub, RequireExp: true},
			token:  raw(t, jwt.SigningMethodHS256, []byte(pubSecret), all, nil),
			reason: "token has no expiry",
		},
		{
			name:  "no mercure claim grants nothing",
			cfg:   hs,
			token: raw(t, jwt.SigningMethodHS256, []byte(pubSecret), jwt.MapClaims{"sub": "alice"}, nil),
			want:  &hub.Claims{},
		},
		{
			name:  "payload kept as JSON",
			cfg:   hs,
			as:    subscriber,
			token: raw(t, jwt.SigningMethodHS256, []byte(subSecret), jwt.MapClaims{"mercure": map[string]any{"subscribe": []string{"/a"}, "payload": map[string]any{"user": "alice", "n": 1}}}, nil),
			want:  &hub.Claims{Subscribe: []string{"/a"}, Payload: json.RawMessage(`{"n":1,"user":"alice"}`)},
		},
		{
			name:  "null payload is no payload",
			cfg:   hs,
			token: raw(t, jwt.SigningMethodHS256, []byte(pubSecret), jwt.MapClaims{"mercure": map[string]any{"payload": nil}}, nil),
			want:  &hub.Claims{},
		},
		{
			name:   "publish is not an array",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodHS256, []byte(pubSecret), jwt.MapClaims{"mercure": map[string]any{"publish": "*"}}, nil),
			reason: "malformed token",
		},
		{
			name:   "exp is not a number",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodHS256, []byte(pubSecret), mercure([]string{"*"}, nil, jwt.MapClaims{"exp": "tomorrow"}), nil),
			reason: "malformed token",
		},
		{
			name:   "crit header",
			cfg:    hs,
			token:  raw(t, jwt.SigningMethodHS256, []byte(pubSecret), all, map[string]any{"crit": []string{"exp"}}),
			reason: "unsupported critical header",
		},
		{name: "empty", cfg: hs, reason: "missing token"},
		{name: "one segment", cfg: hs, token: "abc", reason: "malformed token"},
		{name: "four segments", cfg: hs, token: "a.b.c.d", reason: "malformed token"},
		{name: "bad base64", cfg: hs, token: "!!.@@.##", reason: "malformed token"},
		{name: "header not JSON", cfg: hs, token: "bm90IGpzb24.e30.c2ln", reason: "malformed token"},
		{name: "no alg", cfg: hs, token: "e30.e30.c2ln", reason: "token has no algorithm"},
		{
			name:   "unknown alg",
			cfg:    hs,
			token:  "eyJhbGciOiJYWTEyIn0.e30.c2ln", // {"alg":"XY12"}
			reason: `algorithm "XY12" not accepted`,
		},
		{
			name:   "hostile alg is not echoed",
			cfg:    hs,
			token:  "eyJhbGciOiJhXG5iXG5jXG5kXG5lXG5mIn0.e30.c2ln", // {"alg":"a\nb\nc\nd\ne\nf"}
			reason: "algorithm not accepted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := jwtauth.New(tt.cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			verify := a.VerifyPublisher
			if tt.as == subscriber {
				verify = a.VerifySubscriber
			}
			got, err := verify(tt.token)
			if tt.want == nil {
				checkRefusal(t, got, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want claims %+v", err, tt.want)
			}
			checkClaims(t, got, tt.want)
		})
	}
}

// checkRefusal checks that a token was refused: no claims, an error that
// wraps hub.ErrUnauthorized and says reason, in one line.
func checkRefusal(t *testing.T, got *hub.Claims, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got claims %+v; want a refusal saying %q", got, reason)
	}
	if !errors.Is(err, hub.ErrUnauthorized) {
		t.Errorf("got error %v; want one wrapping hub.ErrUnauthorized", err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("got error %q; want it to contain %q", err, reason)
	}
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("got multi-line error %q; want one line", err)
	}
	if got != nil {
		t.Errorf("got claims %+v with an error; want nil", got)
	}
}

func checkClaims(t *testing.T, got, want *hub.Claims) {
	t.Helper()
	if !slices.Equal(got.Publish, want.Publish) {
		t.Errorf("got Publish %q; want %q", got.Publish, want.Publish)
	}
	if !slices.Equal(got.Subscribe, want.Subscribe) {
		t.Errorf("got Subscribe %q; want %q", got.Subscribe, want.Subscribe)
	}
	if string(got.Payload) != string(want.Payload) {
		t.Errorf("got Payload %s; want %s", got.Payload, want.Payload)
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("got ExpiresAt %v; want %v", got.ExpiresAt, want.ExpiresAt)
	}
}

func TestNewNeedsAKey(t *testing.T) {
	_, err := jwtauth.New(jwtauth.Config{})
	if !errors.Is(err, jwtauth.ErrNoKey) {
		t.Fatalf("New(Config{}): got %v; want ErrNoKey", err)
	}
}

// TestConcurrentVerify runs under -race: one Authenticator, many callers.
func TestConcurrentVerify(t *testing.T) {
	a, err := jwtauth.New(jwtauth.Config{PublisherKey: mustKey(t, "HS256", pubSecret)})
	if err != nil {
		t.Fatal(err)
	}
	good := raw(t, jwt.SigningMethodHS256, []byte(pubSecret), mercure([]string{"*"}, nil, nil), nil)
	bad := raw(t, jwt.SigningMethodHS256, []byte(otherSecret), mercure([]string{"*"}, nil, nil), nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := a.VerifySubscriber(good); err != nil {
					t.Errorf("worker %d: good token: %v", i, err)
					return
				}
				if _, err := a.VerifyPublisher(bad); err == nil {
					t.Errorf("worker %d: bad token accepted", i)
					return
				}
			}
		})
	}
	wg.Wait()
}
