package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// jwk is the JSON layout of an RFC 7517 key: the members a verifying key
// needs. Private members other than an oct key's "k" are ignored: a JWK
// from configuration or a JWKS only verifies.
type jwk struct {
	Kty string   `json:"kty"`
	Kid string   `json:"kid"`
	Alg string   `json:"alg"`
	Use string   `json:"use"`
	Ops []string `json:"key_ops"`
	// RSA
	N string `json:"n"`
	E string `json:"e"`
	// EC
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	// oct
	K string `json:"k"`
}

// jwkSet is an RFC 7517 §5 JWK Set.
type jwkSet struct {
	Keys []json.RawMessage `json:"keys"`
}

// parseJWKMaterial reads a key given as one JWK, or as a JWK Set holding
// exactly one key, for ParseKey.
func parseJWKMaterial(alg string, material []byte) (*Key, error) {
	trimmed := bytes.TrimSpace(material)
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return nil, fmt.Errorf("%w: the key contains a JWK (\"kty\") but is not one JSON object: %v", ErrKeyMismatch, err)
	}
	if _, ok := probe["keys"]; ok {
		var set jwkSet
		if err := json.Unmarshal(trimmed, &set); err != nil {
			return nil, fmt.Errorf("%w: malformed JWK Set: %v", ErrKeyMismatch, err)
		}
		if len(set.Keys) != 1 {
			return nil, fmt.Errorf("%w: a JWK Set given as one key must hold exactly one key, got %d", ErrKeyMismatch, len(set.Keys))
		}
		trimmed = set.Keys[0]
	}
	var j jwk
	if err := json.Unmarshal(trimmed, &j); err != nil {
		return nil, fmt.Errorf("%w: malformed JWK: %v", ErrKeyMismatch, err)
	}
	return j.key(alg, true)
}

// key makes a Key of j for alg (empty: j's "alg", else inferred from the
// key type). allowSecret permits "oct" keys: configured ones may be HMAC
// secrets, but a JWKS fetched from an authorization server publishes
// public keys only.
func (j *jwk) key(alg string, allowSecret bool) (*Key, error) {
	jalg := strings.ToUpper(j.Alg)
	switch {
	case alg == "":
		alg = jalg
	case jalg != "" && jalg != alg:
		return nil, fmt.Errorf("%w: JWK is for %s, configured for %s", ErrKeyMismatch, j.Alg, alg)
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("%w: JWK use %q is not \"sig\"", ErrKeyMismatch, j.Use)
	}
	var (
		material any
		err      error
	)
	switch j.Kty {
	case "RSA":
		material, err = j.rsaPublic()
		if alg == "" {
			alg = "RS256"
		}
	case "EC":
		var pub *ecdsa.PublicKey
		pub, err = j.ecPublic()
		material = pub
		if alg == "" && pub != nil {
			alg = ecAlg(pub.Curve)
		}
	case "oct":
		if !allowSecret {
			return nil, fmt.Errorf("%w: a symmetric (oct) JWK in a published key set", ErrKeyMismatch)
		}
		material, err = b64(j.K, "k")
		if alg == "" {
			alg = "HS256"
		}
	default:
		return nil, fmt.Errorf("%w: JWK kty %q (want RSA, EC or oct)", ErrKeyMismatch, j.Kty)
	}
	if err != nil {
		return nil, err
	}
	if _, ok := hmacMethods[alg]; ok && j.Kty != "oct" {
		return nil, fmt.Errorf("%w: %s needs an oct JWK, got %s", ErrKeyMismatch, alg, j.Kty)
	}
	k, err := NewKey(alg, material)
	if err != nil {
		return nil, err
	}
	k.kid = j.Kid
	return k, nil
}

func (j *jwk) rsaPublic() (*rsa.PublicKey, error) {
	n, err := b64(j.N, "n")
	if err != nil {
		return nil, err
	}
	e, err := b64(j.E, "e")
	if err != nil {
		return nil, err
	}
	if len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("%w: RSA JWK exponent of %d bytes", ErrKeyMismatch, len(e))
	}
	exp := int(new(big.Int).SetBytes(e).Int64())
	if exp < 3 || exp%2 == 0 {
		return nil, fmt.Errorf("%w: RSA JWK exponent %d", ErrKeyMismatch, exp)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
}

func (j *jwk) ecPublic() (*ecdsa.PublicKey, error) {
	var c elliptic.Curve
	switch j.Crv {
	case "P-256":
		c = elliptic.P256()
	case "P-384":
		c = elliptic.P384()
	case "P-521":
		c = elliptic.P521()
	default:
		return nil, fmt.Errorf("%w: EC JWK curve %q (want P-256, P-384 or P-521)", ErrKeyMismatch, j.Crv)
	}
	x, err := b64(j.X, "x")
	if err != nil {
		return nil, err
	}
	y, err := b64(j.Y, "y")
	if err != nil {
		return nil, err
	}
	size := (c.Params().BitSize + 7) / 8
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("%w: EC JWK coordinates are not %d bytes", ErrKeyMismatch, size)
	}
	// Parsing the uncompressed point checks that it is on the curve, which
	// big.Int coordinates alone would not.
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(c, point)
	if err != nil {
		return nil, fmt.Errorf("%w: EC JWK: %v", ErrKeyMismatch, err)
	}
	return pub, nil
}

// b64 decodes a JWK member: base64url without padding, strictly (RFC 7515
// §2), so one key has one spelling.
func b64(s, member string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: JWK has no %q", ErrKeyMismatch, member)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: JWK %q is not base64url: %v", ErrKeyMismatch, member, err)
	}
	return b, nil
}
