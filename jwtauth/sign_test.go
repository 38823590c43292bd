package jwtauth_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
)

func TestSignLayout(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	tests := []struct {
		name   string
		claims hub.Claims
		want   string
	}{
		{
			name: "everything",
			claims: hub.Claims{
				Publish:   []string{"https://example.com/books/{id}"},
				Subscribe: []string{"*"},
				Payload:   json.RawMessage(`{"user":"alice"}`),
				ExpiresAt: exp,
			},
			want: `{"mercure":{"publish":["https://example.com/books/{id}"],"subscribe":["*"],"payload":{"user":"alice"}},"exp":1893553445}`,
		},
		{name: "nothing", want: `{"mercure":{}}`},
		{name: "publish only", claims: hub.Claims{Publish: []string{"*"}}, want: `{"mercure":{"publish":["*"]}}`},
	}
	k := mustKey(t, "HS256", pubSecret)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := jwtauth.Sign(k, tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("got %d segments; want 3", len(parts))
			}
			header, _ := base64.RawURLEncoding.DecodeString(parts[0])
			if got, want := string(header), `{"alg":"HS256","typ":"JWT"}`; got != want {
				t.Errorf("got header %s; want %s", got, want)
			}
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			if string(payload) != tt.want {
				t.Errorf("got claims %s; want %s", payload, tt.want)
			}
		})
	}
}

// TestSignVerify mints with every algorithm family and verifies the result.
func TestSignVerify(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	claims := hub.Claims{
		Publish:   []string{"/a"},
		Subscribe: []string{"/b", "/c/{x}"},
		Payload:   json.RawMessage(`[1,"two"]`),
		ExpiresAt: exp,
	}
	keys := []*jwtauth.Key{
		mustKey(t, "HS256", pubSecret),
		mustKey(t, "HS384", pubSecret+pubSecret),
		mustKey(t, "RS256", testRSA()),
		mustKey(t, "PS512", testRSA()),
		mustKey(t, "ES256", testEC256()),
		mustKey(t, "ES384", testEC384()),
	}
	for _, k := range keys {
		t.Run(k.Alg(), func(t *testing.T) {
			tok, err := jwtauth.Sign(k, claims)
			if err != nil {
				t.Fatal(err)
			}
			a, err := jwtauth.New(jwtauth.Config{SubscriberKey: k})
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.VerifySubscriber(tok)
			if err != nil {
				t.Fatalf("got %v; want the token accepted", err)
			}
			checkClaims(t, got, &claims)
		})
	}
}

func TestSignRefuses(t *testing.T) {
	pubOnly := mustKey(t, "RS256", &testRSA().PublicKey)
	hs := mustKey(t, "HS256", pubSecret)
	tests := []struct {
		name   string
		key    *jwtauth.Key
		claims hub.Claims
		err    error
	}{
		{name: "public key", key: pubOnly, err: jwtauth.ErrCannotSign},
		{name: "nil key", err: jwtauth.ErrNoKey},
		{name: "payload not JSON", key: hs, claims: hub.Claims{Payload: json.RawMessage(`{`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := jwtauth.Sign(tt.key, tt.claims)
			if err == nil {
				t.Fatalf("got token %q; want an error", tok)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("got %v; want %v", err, tt.err)
			}
		})
	}
}

func TestGenerateSecret(t *testing.T) {
	a, b := jwtauth.GenerateSecret(), jwtauth.GenerateSecret()
	if a == b {
		t.Fatalf("got the same secret twice: %q", a)
	}
	if len(a) != 43 {
		t.Errorf("got %d characters; want 43", len(a))
	}
	if _, err := jwtauth.NewKey("HS256", a); err != nil {
		t.Errorf("generated secret refused: %v", err)
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "jwt-secret")
	s1, created, err := jwtauth.LoadOrCreateSecret(path)
	if err != nil || !created {
		t.Fatalf("first call: got created %v, %v; want true, nil", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("got mode %v; want 0600", fi.Mode().Perm())
	}
	s2, created, err := jwtauth.LoadOrCreateSecret(path)
	if err != nil || created {
		t.Fatalf("second call: got created %v, %v; want false, nil", created, err)
	}
	if string(s1) != string(s2) {
		t.Errorf("got %q then %q; want the same secret", s1, s2)
	}
	if _, err := jwtauth.NewKey("HS256", s1); err != nil {
		t.Errorf("stored secret refused: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("got %d files in the directory; want only the secret", len(entries))
	}
}

func TestLoadOrCreateSecretRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwt-secret")
	const n = 8
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, _, err := jwtauth.LoadOrCreateSecret(path)
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
			got[i] = string(s)
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("caller %d got %q; caller 0 got %q; want one secret", i, got[i], got[0])
		}
	}
}

func ExampleSign() {
	key, err := jwtauth.NewKey("HS256", "!ChangeThisMercureHubJWTSecretKey!")
	if err != nil {
		panic(err)
	}
	token, err := jwtauth.Sign(key, hub.Claims{Publish: []string{"*"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(token)

	auth, err := jwtauth.New(jwtauth.Config{PublisherKey: key})
	if err != nil {
		panic(err)
	}
	claims, err := auth.VerifyPublisher(token)
	fmt.Println(claims.Publish, err)
	_, err = auth.VerifyPublisher(token[:len(token)-2] + "AA")
	fmt.Println(err)
	// Output:
	// eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdfX0.a8cjcSRUAcHdnGNMKifA4BK5epRXxQI0UBp2XpNrBdw
	// [*] <nil>
	// hub: unauthorized: invalid signature
}
