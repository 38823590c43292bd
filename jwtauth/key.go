package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// MinRSABits is the smallest RSA modulus a Key accepts, as RFC 7518 §3.3
// requires for RS* and PS*.
const MinRSABits = 2048

// Key is a key bound to one JWS algorithm. It always verifies; it signs too
// when it holds private material (an HMAC secret is both). A Key is
// immutable and safe for concurrent use.
//
// Binding the algorithm to the key is what defeats algorithm confusion: a
// token is checked only with the algorithm of the key configured for it, so
// an attacker cannot, say, sign an HS256 token with an RSA public key's PEM
// as the HMAC secret and have it accepted by a hub configured for RS256.
type Key struct {
	kid    string // the JWK "kid" it came with, if any
	method jwt.SigningMethod
	verify any // []byte, *rsa.PublicKey or *ecdsa.PublicKey
	sign   any // []byte, *rsa.PrivateKey, *ecdsa.PrivateKey, or nil
}

// Alg returns the key's JWS algorithm name, for example "HS256".
func (k *Key) Alg() string { return k.method.Alg() }

// KeyID returns the "kid" of the JWK the key was read from ("" for other
// material). A token naming a kid is checked only with keys of that kid.
func (k *Key) KeyID() string { return k.kid }

// CanSign reports whether the key holds private material, so that Sign
// accepts it.
func (k *Key) CanSign() bool { return k.sign != nil }

// The algorithms a Key may have. "none" is deliberately absent.
var (
	hmacMethods = map[string]*jwt.SigningMethodHMAC{
		"HS256": jwt.SigningMethodHS256,
		"HS384": jwt.SigningMethodHS384,
		"HS512": jwt.SigningMethodHS512,
	}
	rsaMethods = map[string]jwt.SigningMethod{
		"RS256": jwt.SigningMethodRS256,
		"RS384": jwt.SigningMethodRS384,
		"RS512": jwt.SigningMethodRS512,
		"PS256": jwt.SigningMethodPS256,
		"PS384": jwt.SigningMethodPS384,
		"PS512": jwt.SigningMethodPS512,
	}
	ecMethods = map[string]*jwt.SigningMethodECDSA{
		"ES256": jwt.SigningMethodES256,
		"ES384": jwt.SigningMethodES384,
		"ES512": jwt.SigningMethodES512,
	}
	// ecCurves is the one curve each ES* algorithm is defined on.
	ecCurves = map[string]elliptic.Curve{
		"ES256": elliptic.P256(),
		"ES384": elliptic.P384(),
		"ES512": elliptic.P521(),
	}
)

// NewKey binds key to the algorithm alg (case-insensitive: "HS256",
// "RS256", "ES256", … see ParseKey for the list). key is the HMAC secret as
// []byte or string for HS*; an *rsa.PublicKey or *rsa.PrivateKey for RS* and
// PS*; an *ecdsa.PublicKey or *ecdsa.PrivateKey on the algorithm's curve for
// ES*. A private key can both sign and verify.
//
// HMAC secrets must be at least as long as the hash (32 bytes for HS256,
// RFC 7518 §3.2) and must contain neither a PEM block nor a JWK anywhere
// (not only at the start: "openssl pkcs12" writes "Bag Attributes" before
// the PEM): such a secret is almost always a public key configured with the
// wrong algorithm, which would let anyone who knows the public key forge
// tokens.
func NewKey(alg string, key any) (*Key, error) {
	alg = strings.ToUpper(alg)
	if m, ok := hmacMethods[alg]; ok {
		var secret []byte
		switch s := key.(type) {
		case []byte:
			secret = bytes.Clone(s)
		case string:
			secret = []byte(s)
		default:
			return nil, fmt.Errorf("%w: %s needs a secret, got %T", ErrKeyMismatch, alg, key)
		}
		if min := m.Hash.Size(); len(secret) < min {
			return nil, fmt.Errorf("%w: %s needs at least %d bytes, got %d", ErrShortSecret, alg, min, len(secret))
		}
		if containsPEM(secret) {
			return nil, fmt.Errorf("%w: %s secret contains a PEM block (a public key needs RS*, PS* or ES*)", ErrKeyMismatch, alg)
		}
		if containsJWK(secret) {
			return nil, fmt.Errorf("%w: %s secret contains a JWK (give the JWK itself as the key, not as a secret)", ErrKeyMismatch, alg)
		}
		return &Key{method: m, verify: secret, sign: secret}, nil
	}
	if m, ok := rsaMethods[alg]; ok {
		var k Key
		switch rk := key.(type) {
		case *rsa.PublicKey:
			k = Key{method: m, verify: rk}
		case *rsa.PrivateKey:
			k = Key{method: m, verify: &rk.PublicKey, sign: rk}
		default:
			return nil, fmt.Errorf("%w: %s needs an RSA key, got %T", ErrKeyMismatch, alg, key)
		}
		if bits := k.verify.(*rsa.PublicKey).N.BitLen(); bits < MinRSABits {
			return nil, fmt.Errorf("%w: %d-bit RSA key, want at least %d", ErrWeakKey, bits, MinRSABits)
		}
		return &k, nil
	}
	if m, ok := ecMethods[alg]; ok {
		var k Key
		switch ek := key.(type) {
		case *ecdsa.PublicKey:
			k = Key{method: m, verify: ek}
		case *ecdsa.PrivateKey:
			k = Key{method: m, verify: &ek.PublicKey, sign: ek}
		default:
			return nil, fmt.Errorf("%w: %s needs an ECDSA key, got %T", ErrKeyMismatch, alg, key)
		}
		if want, got := ecCurves[alg], k.verify.(*ecdsa.PublicKey).Curve; got != want {
			return nil, fmt.Errorf("%w: %s needs curve %s, got %s", ErrKeyMismatch, alg, want.Params().Name, curveName(got))
		}
		return &k, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
}

// ParseKey makes a Key from key material as it comes from a flag, an
// environment variable or a file:
//
//   - HS256, HS384, HS512: material is the secret itself (its bytes, not
//     decoded from base64 or hex).
//   - RS256, RS384, RS512, PS256, PS384, PS512: material is PEM: a public
//     key ("PUBLIC KEY" or "RSA PUBLIC KEY"), a certificate, or a private key
//     ("RSA PRIVATE KEY" or "PRIVATE KEY"), which can also sign.
//   - ES256, ES384, ES512: PEM as above with an ECDSA key ("EC PRIVATE KEY"
//     too; an "EC PARAMETERS" block before it, as openssl writes, is
//     skipped) on P-256, P-384 or P-521 respectively.
//
// Material that is a JWK (RFC 7517: an object with "kty", or a JWK Set
// holding exactly one key) is that key, whatever the algorithm family; its
// "alg" member, if any, must agree with alg.
//
// An empty alg is inferred: PEM material gives RS256 for an RSA key and
// ES256, ES384 or ES512 by the curve of an ECDSA key; a JWK gives its "alg"
// or the same inference; anything else is an HS256 secret. Material that
// contains a PEM block or a JWK anywhere is never an HMAC secret: it is
// parsed as the key it is, or refused.
func ParseKey(alg string, material []byte) (*Key, error) {
	if len(material) == 0 {
		return nil, ErrNoKey
	}
	alg = strings.ToUpper(alg)
	if containsJWK(material) {
		return parseJWKMaterial(alg, material)
	}
	if _, ok := hmacMethods[alg]; ok && containsPEM(material) {
		return nil, fmt.Errorf("%w: %s needs a secret, but the key contains a PEM block: set the algorithm of the PEM key (RS256, ES256, …) or leave it to be inferred", ErrKeyMismatch, alg)
	}
	if _, ok := hmacMethods[alg]; ok || (alg == "" && !containsPEM(material)) {
		if alg == "" {
			alg = "HS256"
		}
		return NewKey(alg, material)
	}
	if _, ok := rsaMethods[alg]; !ok && alg != "" {
		if _, ok := ecMethods[alg]; !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
		}
	}
	key, err := parsePEMKey(material)
	if err != nil {
		return nil, err
	}
	if alg == "" {
		switch k := key.(type) {
		case *rsa.PublicKey, *rsa.PrivateKey:
			alg = "RS256"
		case *ecdsa.PublicKey:
			alg = ecAlg(k.Curve)
		case *ecdsa.PrivateKey:
			alg = ecAlg(k.Curve)
		}
	}
	return NewKey(alg, key)
}

// LoadKey is ParseKey on the material ReadKeyMaterial finds in spec, the
// form flags and environment variables take: a literal secret or PEM, or
// "@path/to/file".
func LoadKey(alg, spec string) (*Key, error) {
	material, err := ReadKeyMaterial(spec)
	if err != nil {
		return nil, err
	}
	return ParseKey(alg, material)
}

// ReadKeyMaterial resolves a key value as given on the command line or in
// the environment. A value starting with "@" names a file whose contents
// are the material ("@/etc/ssekit/jwt.pem"); any other value is the
// material itself. Trailing CR and LF bytes are removed from file contents,
// so a secret written with echo works; a secret that itself starts with "@"
// or ends in a line break must therefore be given by other means (NewKey).
func ReadKeyMaterial(spec string) ([]byte, error) {
	path, ok := strings.CutPrefix(spec, "@")
	if !ok {
		if spec == "" {
			return nil, ErrNoKey
		}
		return []byte(spec), nil
	}
	if path == "" {
		return nil, fmt.Errorf("%w: empty file name after @", ErrNoKey)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwtauth: reading key: %w", err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrNoKey, path)
	}
	return b, nil
}

// parsePEMKey returns the first key in PEM data: *rsa.PublicKey,
// *rsa.PrivateKey, *ecdsa.PublicKey or *ecdsa.PrivateKey.
func parsePEMKey(data []byte) (any, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: no PEM key found", ErrKeyMismatch)
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("%w: unsupported PEM block %q", ErrKeyMismatch, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: PEM %s: %v", ErrKeyMismatch, block.Type, err)
		}
		switch key.(type) {
		case *rsa.PublicKey, *rsa.PrivateKey, *ecdsa.PublicKey, *ecdsa.PrivateKey:
			return key, nil
		}
		return nil, fmt.Errorf("%w: unsupported key type %T", ErrKeyMismatch, key)
	}
}

// containsPEM reports whether b holds a PEM block boundary anywhere: text
// before it (openssl's "Bag Attributes") does not make it a secret.
func containsPEM(b []byte) bool { return bytes.Contains(b, []byte("-----BEGIN")) }

// containsJWK reports whether b holds a JWK's "kty" member anywhere.
func containsJWK(b []byte) bool { return bytes.Contains(b, []byte(`"kty"`)) }

func ecAlg(c elliptic.Curve) string {
	for alg, curve := range ecCurves {
		if curve == c {
			return alg
		}
	}
	return "ES256" // NewKey then reports the curve mismatch
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "unknown"
	}
	return c.Params().Name
}
