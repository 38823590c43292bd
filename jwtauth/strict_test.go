package jwtauth_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ssekit/sse/jwtauth"
)

// respell gives the signature segment of token another base64 spelling of
// the same bytes: the last character with different unused low bits.
func respell(t *testing.T, token string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig := token[strings.LastIndexByte(token, '.')+1:]
	unused := map[int]int{2: 4, 3: 2}[len(sig)%4] // bits of the last character carrying nothing
	if unused == 0 {
		t.Fatalf("signature of %d characters has no unused bits", len(sig))
	}
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	other := alphabet[last|(1<<unused-1)]
	if other == sig[len(sig)-1] {
		other = alphabet[last&^(1<<unused-1)]
	}
	re := token[:len(token)-1] + string(other)
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	again, err := base64.RawURLEncoding.DecodeString(re[strings.LastIndexByte(re, '.')+1:])
	if err != nil || string(again) != string(raw) {
		t.Fatalf("respelling changed the signature bytes (%v)", err)
	}
	return re
}

// TestOneSpellingPerToken: the signature decodes strictly, so a token has
// one spelling; padding, line breaks and non-canonical trailing bits are
// refused, as is a token over MaxTokenBytes.
func TestOneSpellingPerToken(t *testing.T) {
	key := mustKey(t, "HS256", pubSecret)
	a, err := jwtauth.New(jwtauth.Config{PublisherKey: key})
	if err != nil {
		t.Fatal(err)
	}
	good := raw(t, jwt.SigningMethodHS256, []byte(pubSecret), mercure([]string{"*"}, nil, nil), nil)
	if _, err := a.VerifyPublisher(good); err != nil {
		t.Fatalf("the canonical spelling: %v", err)
	}
	dot := strings.LastIndexByte(good, '.')
	for name, token := range map[string]string{
		"non-canonical trailing bits": respell(t, good),
		"padding":                     good + "=",
		"line break in the signature": good[:dot+5] + "\n" + good[dot+5:],
		"CR in the signature":         good[:dot+5] + "\r" + good[dot+5:],
		"space":                       good + " ",
		"standard base64 alphabet":    strings.NewReplacer("-", "+", "_", "/").Replace(good) + strings.Repeat("A", 0),
		"too long":                    good[:dot] + "." + strings.Repeat("A", jwtauth.MaxTokenBytes),
	} {
		if token == good {
			continue // the alphabet swap is a no-op for a token without - or _
		}
		if _, err := a.VerifyPublisher(token); err == nil {
			t.Errorf("%s: accepted; want refused", name)
		} else if strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("%s: multi-line error %q", name, err)
		}
	}
}

// TestIdentity: a token's identity is the same across the signatures of
// one header and claims (ECDSA signs differently each time) and differs
// when the claims differ, so per-token limits count a token once.
func TestIdentity(t *testing.T) {
	ec := testEC256()
	a, err := jwtauth.New(jwtauth.Config{PublisherKey: mustKey(t, "ES256", &ec.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	claims := mercure([]string{"*"}, nil, nil)
	first := raw(t, jwt.SigningMethodES256, ec, claims, nil)
	second := raw(t, jwt.SigningMethodES256, ec, claims, nil)
	if first == second {
		t.Fatal("two ECDSA signatures are equal; the test needs distinct spellings")
	}
	other := raw(t, jwt.SigningMethodES256, ec, mercure([]string{"/a"}, nil, nil), nil)
	ids := make([]string, 3)
	for i, tok := range []string{first, second, other} {
		c, err := a.VerifyPublisher(tok)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if c.Identity == "" {
			t.Fatalf("token %d: empty Identity", i)
		}
		ids[i] = c.Identity
	}
	if ids[0] != ids[1] {
		t.Errorf("two signatures of the same claims: identities %s and %s; want equal", ids[0], ids[1])
	}
	if ids[0] == ids[2] {
		t.Errorf("different claims: identity %s twice; want different", ids[0])
	}
}
