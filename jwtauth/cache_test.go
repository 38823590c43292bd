package jwtauth

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
)

// TestAcceptedTokensAreRememberedUntilExp checks the cache of accepted
// tokens: a second verification returns the same claims without parsing,
// an expired token is refused even though it was cached, and a refused
// token is never cached.
func TestAcceptedTokensAreRememberedUntilExp(t *testing.T) {
	key, err := NewKey("HS256", []byte("cache-secret-cache-secret-cache-secret"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a, err := newAuthenticator(Config{PublisherKey: key, Leeway: time.Second}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	v := a.publisher
	token, err := Sign(key, hub.Claims{Publish: []string{"*"}, ExpiresAt: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := v.verify(token)
	if err != nil {
		t.Fatal(err)
	}
	second, err := v.verify(token)
	if err != nil || second != first {
		t.Fatalf("second verify = %p, %v; want the cached claims %p", second, err, first)
	}

	now = now.Add(time.Minute + 2*time.Second) // past exp and the leeway
	if _, err := v.verify(token); !errors.Is(err, hub.ErrUnauthorized) {
		t.Fatalf("expired cached token: err = %v; want ErrUnauthorized", err)
	}
	if len(v.accepted) != 0 {
		t.Fatalf("the expired token stayed cached")
	}

	if _, err := v.verify(token + "x"); err == nil {
		t.Fatal("a tampered token was accepted")
	}
	if _, ok := v.accepted[token+"x"]; ok {
		t.Fatal("a refused token was cached")
	}
}

func TestAcceptedTokensCacheIsBounded(t *testing.T) {
	key, err := NewKey("HS256", []byte("cache-secret-cache-secret-cache-secret"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{PublisherKey: key})
	if err != nil {
		t.Fatal(err)
	}
	v := a.publisher
	for i := range cacheSize + 10 {
		token, err := Sign(key, hub.Claims{Publish: []string{"t" + string(rune('a'+i%26))}, Payload: []byte(`{"n":` + strconv.Itoa(i) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.verify(token); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.accepted); n > cacheSize {
		t.Fatalf("%d cached tokens; want at most %d", n, cacheSize)
	}
}
