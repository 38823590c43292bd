package jwtauth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ssekit/sse/hub"
)

// Sign mints a token with k (which must hold private material; an HMAC
// secret always does) carrying c in the Mercure layout:
//
//	{"mercure":{"publish":[…],"subscribe":[…],"payload":…},"exp":…}
//
// Empty fields of c are left out; exp is set only when c.ExpiresAt is not
// zero (whole seconds, as JWT requires). c.Payload must be valid JSON.
// The header is {"alg":k.Alg(),"typ":"JWT"}, so the same claims and an HMAC
// key always give the same token.
func Sign(k *Key, c hub.Claims) (string, error) {
	if k == nil {
		return "", ErrNoKey
	}
	if !k.CanSign() {
		return "", fmt.Errorf("%w: %s key has no private part", ErrCannotSign, k.Alg())
	}
	tc := tokenClaims{Mercure: &mercureClaim{
		Publish:   c.Publish,
		Subscribe: c.Subscribe,
		Payload:   c.Payload,
	}}
	if len(c.Payload) > 0 && !json.Valid(c.Payload) {
		return "", errors.New("jwtauth: payload is not valid JSON")
	}
	if !c.ExpiresAt.IsZero() {
		tc.ExpiresAt = jwt.NewNumericDate(c.ExpiresAt)
	}
	s, err := jwt.NewWithClaims(k.method, tc).SignedString(k.sign)
	if err != nil {
		return "", fmt.Errorf("jwtauth: signing: %w", err)
	}
	return s, nil
}

// GenerateSecret returns a new random HS256 secret: 32 bytes from
// crypto/rand, base64url-encoded without padding (43 characters), so that
// it can be pasted into a flag or an environment variable and used as is.
func GenerateSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails: it crashes the program instead (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// LoadOrCreateSecret returns the secret stored in the file at path,
// creating the file (mode 0600, and its directory, mode 0700) with a
// GenerateSecret value when it does not exist; created reports which. The
// file is written under a temporary name and linked into place, so
// concurrent callers and crashes never leave a partial secret: every caller
// gets the same one. It is how a development hub keeps a stable secret in
// its data directory; pass the result to NewKey("HS256", secret).
func LoadOrCreateSecret(path string) (secret []byte, created bool, err error) {
	if b, err := ReadKeyMaterial("@" + path); err == nil {
		return b, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("jwtauth: creating secret: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".jwt-secret-*")
	if err != nil {
		return nil, false, fmt.Errorf("jwtauth: creating secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	s := []byte(GenerateSecret())
	_, err = tmp.Write(append(bytes.Clone(s), '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("jwtauth: creating secret: %w", err)
	}
	// os.CreateTemp already made the file 0600.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race
			b, err := ReadKeyMaterial("@" + path)
			return b, false, err
		}
		return nil, false, fmt.Errorf("jwtauth: creating secret: %w", err)
	}
	return s, true, nil
}

// AccessClaims are the claims of a draft-08 access token (RFC 9068) that
// SignAccess mints.
type AccessClaims struct {
	// Issuer ("iss"), Audience ("aud": the hub's resource identifier)
	// and ExpiresAt ("exp") are required: a hub refuses a token without
	// them.
	Issuer    string
	Audience  string
	ExpiresAt time.Time
	// Subject ("sub") and ClientID ("client_id"), when set, name the
	// bearer; RFC 9068 asks for them, hubs do not check them.
	Subject, ClientID string
	// Details are the Mercure authorization details; each needs an
	// action and at least one topic matcher (Type "" means "exact").
	Details []hub.AuthorizationDetail
}

// accessTokenJSON is the JSON layout SignAccess writes.
type accessTokenJSON struct {
	Details  []detailOut `json:"authorization_details"`
	ClientID string      `json:"client_id,omitempty"`
	jwt.RegisteredClaims
}

type detailOut struct {
	Type    string          `json:"type"`
	Actions []string        `json:"actions"`
	Topics  []matcherOut    `json:"topics"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type matcherOut struct {
	Match     string `json:"match"`
	MatchType string `json:"match_type,omitempty"`
}

// SignAccess mints a draft-08 access token with k: header
// {"alg":k.Alg(),"typ":"at+jwt"}, claims iss, aud, exp, iat, jti (random)
// and the authorization details, checked as a hub would check them.
func SignAccess(k *Key, c AccessClaims) (string, error) {
	if k == nil {
		return "", ErrNoKey
	}
	if !k.CanSign() {
		return "", fmt.Errorf("%w: %s key has no private part", ErrCannotSign, k.Alg())
	}
	switch {
	case c.Issuer == "":
		return "", errors.New("jwtauth: an access token needs an issuer")
	case c.Audience == "":
		return "", errors.New("jwtauth: an access token needs an audience (the hub's resource identifier)")
	case c.ExpiresAt.IsZero():
		return "", errors.New("jwtauth: an access token needs an expiry")
	}
	jti := make([]byte, 16)
	rand.Read(jti)
	tc := accessTokenJSON{
		Details:  make([]detailOut, 0, len(c.Details)),
		ClientID: c.ClientID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			Audience:  jwt.ClaimStrings{c.Audience},
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			IssuedAt:  jwt.NewNumericDate(time.Now()),
			ID:        base64.RawURLEncoding.EncodeToString(jti),
		},
	}
	for i, d := range c.Details {
		out := detailOut{Type: MercureDetailType, Payload: d.Payload}
		if d.Publish {
			out.Actions = append(out.Actions, "publish")
		}
		if d.Subscribe {
			out.Actions = append(out.Actions, "subscribe")
		}
		if len(out.Actions) == 0 || len(d.Topics) == 0 {
			return "", fmt.Errorf("jwtauth: detail %d needs an action and a topic", i)
		}
		if len(d.Payload) > 0 && !isObject(d.Payload) {
			return "", fmt.Errorf("jwtauth: detail %d: payload must be a JSON object", i)
		}
		for _, m := range d.Topics {
			mt := m.Type
			if mt == "exact" {
				mt = "" // the default, left out as Mercure writes it
			}
			out.Topics = append(out.Topics, matcherOut{Match: m.Match, MatchType: mt})
		}
		tc.Details = append(tc.Details, out)
	}
	// What a hub would refuse is refused here, with its reason.
	raw, err := json.Marshal(tc.Details)
	if err != nil {
		return "", fmt.Errorf("jwtauth: %w", err)
	}
	if _, err := parseDetails(raw, nil); err != nil {
		return "", fmt.Errorf("jwtauth: authorization_details: %w", err)
	}
	t := jwt.NewWithClaims(k.method, tc)
	t.Header["typ"] = "at+jwt"
	s, err := t.SignedString(k.sign)
	if err != nil {
		return "", fmt.Errorf("jwtauth: signing: %w", err)
	}
	return s, nil
}
