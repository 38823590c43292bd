package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// keyServer is an authorization server: its JWKS (and metadata) over
// HTTP, counting the fetches.
type keyServer struct {
	srv     *httptest.Server
	fetches atomic.Int32

	mu   sync.Mutex
	keys map[string]*ecdsa.PrivateKey // by kid; guarded by mu
	body string                       // when set, served instead; guarded by mu
}

func newKeyServer(t *testing.T, kids ...string) *keyServer {
	t.Helper()
	ks := &keyServer{keys: make(map[string]*ecdsa.PrivateKey)}
	for _, kid := range kids {
		ks.add(kid)
	}
	ks.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		ks.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(ks.jwks()))
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

func (ks *keyServer) add(kid string) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	ks.mu.Lock()
	ks.keys[kid] = k
	ks.mu.Unlock()
	return k
}

func (ks *keyServer) key(kid string) *ecdsa.PrivateKey {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.keys[kid]
}

func (ks *keyServer) jwks() string {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.body != "" {
		return ks.body
	}
	var entries []string
	// An oct key and an encryption key are skipped, not fatal.
	entries = append(entries, `{"kty":"oct","k":"`+base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))+`"}`)
	for kid, k := range ks.keys {
		enc := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
		entries = append(entries, fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":%q,"use":"sig","alg":"ES256","x":%q,"y":%q}`,
			kid, enc(k.X.FillBytes(make([]byte, 32))), enc(k.Y.FillBytes(make([]byte, 32)))))
		entries = append(entries, fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":%q,"use":"enc","x":"AA","y":"AA"}`, kid+"-enc"))
	}
	return `{"keys":[` + strings.Join(entries, ",") + `]}`
}

const jwksIssuer = "https://as.example"
const jwksResource = "https://hub.example/.well-known/mercure"

func jwksToken(t *testing.T, k *ecdsa.PrivateKey, kid string, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": jwksIssuer, "aud": jwksResource, "exp": time.Now().Add(time.Hour).Unix(),
		"authorization_details": []any{map[string]any{"type": MercureDetailType, "actions": []any{"publish"}, "topics": []any{map[string]any{"match": "*"}}}},
		"jti":                   fmt.Sprint(time.Now().UnixNano()), // distinct tokens: no cache hits
	})
	tok.Header["typ"] = "at+jwt"
	if kid != "" {
		tok.Header["kid"] = kid
	}
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clock is a settable time for the fetch intervals.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func jwksAuth(t *testing.T, is Issuer, c *clock, edit func(*Config)) *Authenticator {
	t.Helper()
	cfg := Config{Resource: jwksResource, Issuers: []Issuer{is}, JWKSTimeout: 2 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	a, err := newAuthenticator(cfg, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestJWKSFetchAndRefresh: keys are fetched on first use, not again for
// the next token, again for an unknown kid only once JWKSMinInterval has
// passed (however many such tokens come), and again once JWKSRefresh old.
func TestJWKSFetchAndRefresh(t *testing.T) {
	ks := newKeyServer(t, "k1")
	c := &clock{now: time.Now()}
	a := jwksAuth(t, Issuer{ID: jwksIssuer, JWKSURL: ks.srv.URL + "/jwks"}, c, nil)
	check := func(what string, tok string, ok bool, fetches int32) {
		t.Helper()
		_, err := a.VerifyPublisher(tok)
		if ok && err != nil {
			t.Errorf("%s: %v; want accepted", what, err)
		}
		if !ok && err == nil {
			t.Errorf("%s: accepted; want refused", what)
		}
		if got := ks.fetches.Load(); got != fetches {
			t.Errorf("%s: %d fetches; want %d", what, got, fetches)
		}
	}
	check("first token", jwksToken(t, ks.key("k1"), "k1", nil), true, 1)
	check("second token", jwksToken(t, ks.key("k1"), "k1", nil), true, 1)
	check("no kid", jwksToken(t, ks.key("k1"), "", nil), true, 1)

	k2 := ks.add("k2") // rotation at the authorization server
	for i := range 20 {
		check(fmt.Sprint("new kid within the interval, try ", i), jwksToken(t, k2, "k2", nil), false, 1)
		check(fmt.Sprint("random kid within the interval, try ", i), jwksToken(t, k2, fmt.Sprint("r", i), nil), false, 1)
	}
	c.Add(defaultJWKSMinInterval)
	check("new kid after the interval", jwksToken(t, k2, "k2", nil), true, 2)
	check("random kid right after", jwksToken(t, k2, "nope", nil), false, 2)

	c.Add(defaultJWKSRefresh)
	check("after the refresh age", jwksToken(t, ks.key("k1"), "k1", nil), true, 3)

	// The server breaks: the last good keys stay in use.
	ks.mu.Lock()
	ks.body = "not json"
	ks.mu.Unlock()
	c.Add(defaultJWKSRefresh)
	check("server broken, old keys", jwksToken(t, ks.key("k1"), "k1", nil), true, 4)
}

// TestJWKSBounds: a key set larger than MaxJWKSBytes, one that takes
// longer than JWKSTimeout, one with no usable key and a server error all
// leave the issuer's tokens refused with one line, and the keys a token's
// own headers point to are never fetched.
func TestJWKSBounds(t *testing.T) {
	var attacker atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { attacker.Add(1) }))
	t.Cleanup(evil.Close)
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"keys":[` + strings.Repeat(" ", 2048) + `]}`))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`)) })
	mux.HandleFunc("/error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	k := ks0(t)
	for _, path := range []string{"/big", "/slow", "/empty", "/error"} {
		t.Run(path, func(t *testing.T) {
			c := &clock{now: time.Now()}
			a := jwksAuth(t, Issuer{ID: jwksIssuer, JWKSURL: srv.URL + path}, c, func(cfg *Config) {
				cfg.MaxJWKSBytes = 1024
				cfg.JWKSTimeout = 200 * time.Millisecond
			})
			tok := jwksToken(t, k, "k1", map[string]any{"jku": evil.URL, "x5u": evil.URL})
			_, err := a.VerifyPublisher(tok)
			if err == nil || !strings.Contains(err.Error(), "key set is unavailable") {
				t.Errorf("got %v; want refused: key set unavailable", err)
			}
		})
	}
	if n := attacker.Load(); n != 0 {
		t.Errorf("the jku/x5u server was fetched %d times; want never", n)
	}
}

func ks0(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestJWKSDiscovery: with Discover, the key set's URL comes from the
// issuer's RFC 8414 metadata (path inserted after the host), or from
// OpenID Connect discovery when that is absent; metadata naming another
// issuer is not used.
func TestJWKSDiscovery(t *testing.T) {
	ks := newKeyServer(t, "k1")
	for _, tt := range []struct {
		name, metaPath, metaIssuer string
		ok                         bool
	}{
		{"RFC 8414", "/.well-known/oauth-authorization-server/tenant", "", true},
		{"OpenID Connect", "/tenant/.well-known/openid-configuration", "", true},
		{"another issuer in the metadata", "/.well-known/oauth-authorization-server/tenant", "https://evil.example", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var issuerID string
			meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != tt.metaPath {
					http.NotFound(w, r)
					return
				}
				iss := issuerID
				if tt.metaIssuer != "" {
					iss = tt.metaIssuer
				}
				json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": ks.srv.URL + "/jwks"})
			}))
			t.Cleanup(meta.Close)
			issuerID = meta.URL + "/tenant"
			c := &clock{now: time.Now()}
			a := jwksAuth(t, Issuer{ID: issuerID, Discover: true}, c, nil)
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
				"iss": issuerID, "aud": jwksResource, "exp": time.Now().Add(time.Hour).Unix(),
				"authorization_details": []any{map[string]any{"type": MercureDetailType, "actions": []any{"publish"}, "topics": []any{map[string]any{"match": "*"}}}},
			})
			tok.Header["typ"], tok.Header["kid"] = "at+jwt", "k1"
			s, err := tok.SignedString(ks.key("k1"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.VerifyPublisher(s)
			if tt.ok && err != nil {
				t.Errorf("got %v; want accepted", err)
			}
			if !tt.ok && err == nil {
				t.Errorf("accepted; want refused")
			}
		})
	}
}

// TestJWKSConcurrentFirstFetch: many first tokens at once cause one
// fetch, and every one of them is verified with its result.
func TestJWKSConcurrentFirstFetch(t *testing.T) {
	ks := newKeyServer(t, "k1")
	c := &clock{now: time.Now()}
	a := jwksAuth(t, Issuer{ID: jwksIssuer, JWKSURL: ks.srv.URL + "/jwks"}, c, nil)
	var wg sync.WaitGroup
	for i := range 16 {
		tok := jwksToken(t, ks.key("k1"), "k1", nil)
		wg.Go(func() {
			if _, err := a.VerifyPublisher(tok); err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for 16 concurrent first tokens; want 1", n)
	}
}
