package jwtauth_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
)

// TestIssuerConfig reads issuers as a configuration file writes them
// (JSON), loads them, and verifies a token of each with only its own keys.
func TestIssuerConfig(t *testing.T) {
	const a, b = "https://a.example", "https://b.example"
	secretA, secretB := strings.Repeat("a", 32), strings.Repeat("b", 32)
	var cfgs []jwtauth.IssuerConfig
	if err := json.Unmarshal([]byte(`[{"id":"`+a+`","keys":["`+secretA+`"]},{"id":"`+b+`","publisher_keys":["`+secretB+`"],"alg":"HS256"}]`), &cfgs); err != nil {
		t.Fatal(err)
	}
	var issuers []jwtauth.Issuer
	for _, c := range cfgs {
		is, err := c.Load()
		if err != nil {
			t.Fatal(err)
		}
		issuers = append(issuers, is)
	}
	const aud = "https://hub.example/.well-known/mercure"
	auth, err := jwtauth.New(jwtauth.Config{Issuers: issuers, Resource: aud})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(iss, secret string) string {
		key, err := jwtauth.NewKey("HS256", []byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwtauth.SignAccess(key, jwtauth.AccessClaims{Issuer: iss, Audience: aud, ExpiresAt: time.Now().Add(time.Hour),
			Details: []hub.AuthorizationDetail{{Publish: true, Topics: []hub.TokenMatcher{{Match: "*"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tt := range []struct {
		name, iss, secret string
		ok                bool
	}{
		{"A", a, secretA, true},
		{"B", b, secretB, true},
		{"AWithBsKey", a, secretB, false},
		{"BWithAsKey", b, secretA, false},
	} {
		if _, err := auth.VerifyPublisher(sign(tt.iss, tt.secret)); (err == nil) != tt.ok {
			t.Errorf("%s: %v; want ok %v", tt.name, err, tt.ok)
		}
	}
	for _, c := range []jwtauth.IssuerConfig{{}, {ID: a, Keys: []string{"short"}}, {ID: a, JWKSURL: "file:///etc/passwd"}} {
		if _, err := c.Load(); err == nil {
			t.Errorf("Load(%+v) accepted", c)
		} else if errors.Is(err, jwtauth.ErrBadConfig) && strings.Contains(err.Error(), "\n") {
			t.Errorf("Load(%+v): %q; want one line", c, err)
		}
	}
}
