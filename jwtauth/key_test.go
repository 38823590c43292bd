package jwtauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
)

func TestParseKey(t *testing.T) {
	rsaKey, ec256, ec384 := testRSA(), testEC256(), testEC384()
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemBytes(t, "PRIVATE KEY", der)
	}
	ecDER, err := x509.MarshalECPrivateKey(ec256)
	if err != nil {
		t.Fatal(err)
	}
	// openssl ecparam -genkey writes the curve first, then the key.
	opensslEC := append(pemBytes(t, "EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}),
		pemBytes(t, "EC PRIVATE KEY", ecDER)...)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "hub"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rsaKey.PublicKey, rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	p256Pub := pkixPEM(t, &ec256.PublicKey)

	tests := []struct {
		name     string
		alg      string
		material []byte
		wantAlg  string
		canSign  bool
		err      error // nil: success
	}{
		{name: "HS256 secret", alg: "HS256", material: []byte(pubSecret), wantAlg: "HS256", canSign: true},
		{name: "lower-case alg", alg: "hs256", material: []byte(pubSecret), wantAlg: "HS256", canSign: true},
		{name: "inferred HS256", material: []byte(pubSecret), wantAlg: "HS256", canSign: true},
		{name: "HS512 secret", alg: "HS512", material: []byte(pubSecret + pubSecret), wantAlg: "HS512", canSign: true},
		{name: "short HS256 secret", alg: "HS256", material: []byte("too-short"), err: jwtauth.ErrShortSecret},
		{name: "short HS512 secret", alg: "HS512", material: []byte(pubSecret), err: jwtauth.ErrShortSecret},
		{name: "PEM as HMAC secret", alg: "HS256", material: pkixPEM(t, &rsaKey.PublicKey), err: jwtauth.ErrKeyMismatch},
		{name: "RS256 PKIX public", alg: "RS256", material: pkixPEM(t, &rsaKey.PublicKey), wantAlg: "RS256"},
		{name: "RS256 PKCS1 public", alg: "RS256", material: pemBytes(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)), wantAlg: "RS256"},
		{name: "RS256 certificate", alg: "RS256", material: pemBytes(t, "CERTIFICATE", certDER), wantAlg: "RS256"},
		{name: "RS256 PKCS1 private", alg: "RS256", material: pemBytes(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), wantAlg: "RS256", canSign: true},
		{name: "PS384 PKCS8 private", alg: "PS384", material: pkcs8(rsaKey), wantAlg: "PS384", canSign: true},
		{name: "inferred RS256", material: pkixPEM(t, &rsaKey.PublicKey), wantAlg: "RS256"},
		{name: "ES256 PKIX public", alg: "ES256", material: p256Pub, wantAlg: "ES256"},
		{name: "ES256 openssl private", alg: "ES256", material: opensslEC, wantAlg: "ES256", canSign: true},
		{name: "ES384 PKCS8 private", alg: "ES384", material: pkcs8(ec384), wantAlg: "ES384", canSign: true},
		{name: "inferred ES256", material: p256Pub, wantAlg: "ES256"},
		{name: "inferred ES384", material: pkixPEM(t, &ec384.PublicKey), wantAlg: "ES384"},
		{name: "ES256 with a P-384 key", alg: "ES256", material: pkixPEM(t, &ec384.PublicKey), err: jwtauth.ErrKeyMismatch},
		{name: "RS256 with an EC key", alg: "RS256", material: p256Pub, err: jwtauth.ErrKeyMismatch},
		{name: "ES256 with an RSA key", alg: "ES256", material: pkixPEM(t, &rsaKey.PublicKey), err: jwtauth.ErrKeyMismatch},
		{name: "RS256 with a secret", alg: "RS256", material: []byte(pubSecret), err: jwtauth.ErrKeyMismatch},
		{name: "garbage PEM", alg: "RS256", material: pemBytes(t, "PUBLIC KEY", []byte("nope")), err: jwtauth.ErrKeyMismatch},
		{name: "unknown PEM block", alg: "RS256", material: pemBytes(t, "OPENSSH PRIVATE KEY", []byte("x")), err: jwtauth.ErrKeyMismatch},
		{name: "none", alg: "none", material: []byte(pubSecret), err: jwtauth.ErrUnsupportedAlg},
		{name: "EdDSA", alg: "EdDSA", material: []byte(pubSecret), err: jwtauth.ErrUnsupportedAlg},
		{name: "empty material", alg: "HS256", err: jwtauth.ErrNoKey},
		// openssl pkcs12 -nokeys writes attributes before the PEM: never a secret.
		{name: "pkcs12 output as HS256 secret", alg: "HS256", material: pkcs12Shape(pemBytes(t, "CERTIFICATE", certDER)), err: jwtauth.ErrKeyMismatch},
		{name: "pkcs12 output inferred", material: pkcs12Shape(pemBytes(t, "CERTIFICATE", certDER)), wantAlg: "RS256"},
		{name: "pkcs12 output as RS256", alg: "RS256", material: pkcs12Shape(pkixPEM(t, &rsaKey.PublicKey)), wantAlg: "RS256"},
		{name: "PEM after a secret-like line", alg: "HS256", material: append([]byte(pubSecret+"\n"), p256Pub...), err: jwtauth.ErrKeyMismatch},
		{name: "RSA JWK inferred", material: rsaJWK(t, &rsaKey.PublicKey, `"kid":"r1"`), wantAlg: "RS256"},
		{name: "RSA JWK as PS256", alg: "PS256", material: rsaJWK(t, &rsaKey.PublicKey, ""), wantAlg: "PS256"},
		{name: "RSA JWK as HS256", alg: "HS256", material: rsaJWK(t, &rsaKey.PublicKey, ""), err: jwtauth.ErrKeyMismatch},
		{name: "RSA JWK whose alg disagrees", alg: "RS512", material: rsaJWK(t, &rsaKey.PublicKey, `"alg":"RS256"`), err: jwtauth.ErrKeyMismatch},
		{name: "EC JWK inferred", material: ecJWK(t, &ec384.PublicKey), wantAlg: "ES384"},
		{name: "EC JWK off the curve", material: []byte(`{"kty":"EC","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 42) + `E"}`), err: jwtauth.ErrKeyMismatch},
		{name: "oct JWK", material: []byte(`{"kty":"oct","k":"` + base64.RawURLEncoding.EncodeToString([]byte(pubSecret)) + `"}`), wantAlg: "HS256", canSign: true},
		{name: "short oct JWK", material: []byte(`{"kty":"oct","k":"c2hvcnQ"}`), err: jwtauth.ErrShortSecret},
		{name: "JWK Set of one", material: []byte(`{"keys":[` + string(rsaJWK(t, &rsaKey.PublicKey, "")) + `]}`), wantAlg: "RS256"},
		{name: "JWK Set of two", material: []byte(`{"keys":[` + string(rsaJWK(t, &rsaKey.PublicKey, "")) + `,` + string(ecJWK(t, &ec256.PublicKey)) + `]}`), err: jwtauth.ErrKeyMismatch},
		{name: "JWK inside text as a secret", alg: "HS256", material: append([]byte("key: "), rsaJWK(t, &rsaKey.PublicKey, "")...), err: jwtauth.ErrKeyMismatch},
		{name: "JWK for encryption", material: rsaJWK(t, &rsaKey.PublicKey, `"use":"enc"`), err: jwtauth.ErrKeyMismatch},
		{name: "JWK of unknown kty", material: []byte(`{"kty":"OKP","crv":"Ed25519","x":"AA"}`), err: jwtauth.ErrKeyMismatch},
		{name: "JWK with padded n", material: []byte(`{"kty":"RSA","n":"AQAB==","e":"AQAB"}`), err: jwtauth.ErrKeyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := jwtauth.ParseKey(tt.alg, tt.material)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %v; want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v; want a key", err)
			}
			if k.Alg() != tt.wantAlg {
				t.Errorf("got Alg %s; want %s", k.Alg(), tt.wantAlg)
			}
			if k.CanSign() != tt.canSign {
				t.Errorf("got CanSign %v; want %v", k.CanSign(), tt.canSign)
			}
		})
	}
}

// pkcs12Shape is what "openssl pkcs12 -in f.p12 -nokeys" prints: bag
// attributes, then the subject and issuer, then the PEM.
func pkcs12Shape(pemText []byte) []byte {
	head := "Bag Attributes\n    localKeyID: 01 02 03 04\n    friendlyName: hub\nsubject=CN = hub\n\nissuer=CN = hub\n\n"
	return append([]byte(head), pemText...)
}

func rsaJWK(t *testing.T, k *rsa.PublicKey, extra string) []byte {
	t.Helper()
	s := `{"kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(k.N.Bytes()) + `","e":"` +
		base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()) + `"`
	if extra != "" {
		s += "," + extra
	}
	return []byte(s + "}")
}

func ecJWK(t *testing.T, k *ecdsa.PublicKey) []byte {
	t.Helper()
	point, err := k.Bytes() // 0x04 ‖ X ‖ Y, each coordinate its full size
	if err != nil {
		t.Fatal(err)
	}
	size := (len(point) - 1) / 2
	return []byte(`{"kty":"EC","crv":"` + k.Curve.Params().Name + `","x":"` +
		base64.RawURLEncoding.EncodeToString(point[1:1+size]) + `","y":"` +
		base64.RawURLEncoding.EncodeToString(point[1+size:]) + `"}`)
}

func TestNewKeyRefusesPEMAndJWKAnywhere(t *testing.T) {
	for name, secret := range map[string]string{
		"PEM in the middle": pubSecret + " -----BEGIN PUBLIC KEY----- " + pubSecret,
		"JWK in the middle": pubSecret + ` {"kty":"RSA"} ` + pubSecret,
	} {
		if _, err := jwtauth.NewKey("HS256", secret); !errors.Is(err, jwtauth.ErrKeyMismatch) {
			t.Errorf("%s: got %v; want ErrKeyMismatch", name, err)
		}
	}
}

func TestNewKeyRefusesSmallRSA(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtauth.NewKey("RS256", &small.PublicKey); !errors.Is(err, jwtauth.ErrWeakKey) {
		t.Fatalf("got %v; want ErrWeakKey", err)
	}
}

func TestNewKeyWrongType(t *testing.T) {
	tests := []struct {
		alg string
		key any
	}{
		{"HS256", &testEC256().PublicKey},
		{"RS256", []byte(pubSecret)},
		{"ES256", &testRSA().PublicKey},
		{"ES256", ecdsa.PublicKey{Curve: elliptic.P256()}},
	}
	for _, tt := range tests {
		if _, err := jwtauth.NewKey(tt.alg, tt.key); !errors.Is(err, jwtauth.ErrKeyMismatch) {
			t.Errorf("NewKey(%s, %T): got %v; want ErrKeyMismatch", tt.alg, tt.key, err)
		}
	}
}

func TestReadKeyMaterial(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pemFile := write("key.pem", "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n")
	tests := []struct {
		name string
		spec string
		want string
		err  error
	}{
		{name: "literal", spec: "s3cret", want: "s3cret"},
		{name: "literal keeps newlines", spec: "a\n", want: "a\n"},
		{name: "file with newline", spec: "@" + write("nl", "s3cret\n"), want: "s3cret"},
		{name: "file with CRLF", spec: "@" + write("crlf", "s3cret\r\n"), want: "s3cret"},
		{name: "file without newline", spec: "@" + write("plain", "s3cret"), want: "s3cret"},
		{name: "PEM file", spec: "@" + pemFile, want: "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----"},
		{name: "empty file", spec: "@" + write("empty", "\n"), err: jwtauth.ErrNoKey},
		{name: "missing file", spec: "@" + filepath.Join(dir, "absent"), err: os.ErrNotExist},
		{name: "bare @", spec: "@", err: jwtauth.ErrNoKey},
		{name: "empty", spec: "", err: jwtauth.ErrNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jwtauth.ReadKeyMaterial(tt.spec)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %q, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestLoadKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(p, pkixPEM(t, &testRSA().PublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := jwtauth.LoadKey("", "@"+p)
	if err != nil {
		t.Fatal(err)
	}
	if k.Alg() != "RS256" || k.CanSign() {
		t.Errorf("got %s, CanSign %v; want RS256, false", k.Alg(), k.CanSign())
	}
	a, err := jwtauth.New(jwtauth.Config{PublisherKey: k})
	if err != nil {
		t.Fatal(err)
	}
	signer := mustKey(t, "RS256", testRSA())
	tok, err := jwtauth.Sign(signer, hub.Claims{Publish: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyPublisher(tok); err != nil {
		t.Errorf("token from the private key refused by the file's public key: %v", err)
	}
}
