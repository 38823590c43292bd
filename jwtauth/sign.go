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
