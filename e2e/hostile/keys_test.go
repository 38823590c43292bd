package hostile_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssekit/sse/internal/e2etest"
)

// Keys: a key file or value holding a PEM block or a JWK anywhere is never
// an HMAC secret, short secrets are refused at start, a token has one
// spelling, and per-token limits count a token once however it is spelt.

// writeFile writes b to a file in a fresh directory and returns "@path".
func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return "@" + path
}

// pkcs12Output is what "openssl pkcs12 -in hub.p12 -nokeys" prints for a
// self-signed certificate of key: bag attributes first, then the PEM.
func pkcs12Output(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "hub"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	head := "Bag Attributes\n    localKeyID: 5A 1B 0C 9F\n    friendlyName: hub\nsubject=CN = hub\n\nissuer=CN = hub\n\n"
	return append([]byte(head), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}

func signWith(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func publishAll() jwt.MapClaims {
	return jwt.MapClaims{"mercure": map[string]any{"publish": []string{"*"}, "subscribe": []string{"*"}}}
}

// TestKeysRefusedAtStart: "ssekit serve" refuses, with one line saying
// why and exit code 1 or 2, a secret that is too short and key material
// with PEM or a JWK inside given as an HMAC secret.
func TestKeysRefusedAtStart(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs12 := pkcs12Output(t, rsaKey)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"31-byte secret", []string{"--jwt-key", strings.Repeat("s", 31)}, "HMAC secret too short"},
		{"short publisher secret", []string{"--jwt-key", testSecret, "--publisher-jwt-key", "changeme"}, "HMAC secret too short"},
		{"pkcs12 output as HS256", []string{"--jwt-key", writeFile(t, "hub.pem", pkcs12), "--jwt-alg", "HS256"}, "PEM block"},
		{"pkcs12 output as HS512 subscriber key", []string{"--jwt-key", testSecret, "--subscriber-jwt-key", writeFile(t, "sub.pem", pkcs12), "--subscriber-jwt-alg", "HS512"}, "PEM block"},
		{"JWK inside a value as HS256", []string{"--jwt-key", "key=" + `{"kty":"oct","k":"` + strings.Repeat("A", 43) + `"}`, "--jwt-alg", "HS256"}, "JWK"},
		{"JWK file that is not one object", []string{"--jwt-key", writeFile(t, "k.json", []byte(`{"kty":"RSA"} {"kty":"RSA"}`))}, "JWK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tt.args...)
			_, stderr, code := ssekit.Run(t, nil, "", args...)
			if code == 0 {
				t.Fatalf("exit 0; want a refusal")
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q; want it to say %q", stderr, tt.want)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Errorf("stderr has %d lines; want one:\n%s", n+1, stderr)
			}
		})
	}
}

// TestPKCS12KeyIsAPublicKey: with openssl pkcs12 output as --jwt-key and
// no algorithm, the hub verifies RS256 with the certificate's key: tokens
// signed HS256 with the file's text, or with its PEM part, are refused
// (401, nothing stored), the real key's token publishes, and a subscriber
// receives exactly that update.
func TestPKCS12KeyIsAPublicKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	text := pkcs12Output(t, rsaKey)
	h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--data-dir", t.TempDir(), "--jwt-key", writeFile(t, "hub.pem", text), "--allow-anonymous"}})
	st := e2etest.OpenStream(t, h.Client, h.URL(), "topic=*", "", e2etest.Timeout)

	pemPart := text[strings.Index(string(text), "-----BEGIN"):]
	for name, forged := range map[string]string{
		"HS256 with the file's text":  signWith(t, jwt.SigningMethodHS256, text, publishAll()),
		"HS256 with its PEM part":     signWith(t, jwt.SigningMethodHS256, pemPart, publishAll()),
		"HS256 with the trimmed text": signWith(t, jwt.SigningMethodHS256, []byte(strings.TrimSpace(string(text))), publishAll()),
		"unsigned (alg none)":         signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, publishAll()),
	} {
		if status, answer := h.PublishID(forged, "private-topic", "forged"); status != http.StatusUnauthorized {
			t.Errorf("%s: got %d %s; want 401", name, status, answer)
		}
	}
	good := signWith(t, jwt.SigningMethodRS256, rsaKey, publishAll())
	if status, answer := h.PublishID(good, "private-topic", "real"); status != http.StatusOK {
		t.Fatalf("the certificate key's token: got %d %s; want 200", status, answer)
	}
	if ev := st.Next(t); ev.ID != "real" {
		t.Errorf("subscriber got id %q first; want real (the forged publishes must store nothing)", ev.ID)
	}
}

// TestRespelledTokens: a signature respelt (non-canonical trailing bits,
// padding, a percent-encoded line break in the query token) is refused
// with 401, and two valid signatures of one token's claims (ECDSA signs
// differently each time) share one publish-rate bucket.
func TestRespelledTokens(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, "ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--data-dir", t.TempDir(), "--jwt-key", keyFile,
		"--allow-anonymous", "--publish-rate", "0.001"}})

	claims := publishAll()
	first := signWith(t, jwt.SigningMethodES256, ec, claims)
	second := signWith(t, jwt.SigningMethodES256, ec, claims)
	if first == second {
		t.Fatal("two ECDSA signatures are equal; the test needs two spellings")
	}
	// ES256 signatures are 64 bytes: 86 characters, the last with 4 unused bits.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, first[len(first)-1])
	respelt := first[:len(first)-1] + string(alphabet[last^1])
	for name, tok := range map[string]string{
		"non-canonical trailing bits": respelt,
		"padding":                     first + "==",
	} {
		if status, answer := h.PublishID(tok, "t", "respelt-"+name); status != http.StatusUnauthorized {
			t.Errorf("%s: got %d %s; want 401", name, status, answer)
		}
	}

	// The burst is 100: spend it with one signature, then the other must
	// find the bucket empty.
	for i := range 100 {
		if status, answer := h.PublishID(first, "t", fmt.Sprint("burst-", i)); status != http.StatusOK {
			t.Fatalf("publish %d of the burst: got %d %s; want 200", i, status, answer)
		}
	}
	if status, answer := h.PublishID(second, "t", "after-burst"); status != http.StatusTooManyRequests {
		t.Errorf("the same claims signed again after the burst: got %d %s; want 429 (one bucket per token)", status, answer)
	}
	other := signWith(t, jwt.SigningMethodES256, ec, jwt.MapClaims{"mercure": map[string]any{"publish": []string{"t"}}})
	if status, answer := h.PublishID(other, "t", "other-token"); status != http.StatusOK {
		t.Errorf("another token: got %d %s; want 200 (a bucket of its own)", status, answer)
	}
}

// TestAccessTokenFailuresThroughTheHub: with --issuer and --resource, the
// hub refuses with 401 every access token that fails validation (the
// wrong audience, a foreign issuer, no exp, a bare draft-07 string among
// its topics, a URL Pattern RE2 cannot compile, no typ, signed with a key
// named in its own header),
// whatever it claims to grant, and
// keeps accepting draft-07 tokens signed with the same key.
func TestAccessTokenFailuresThroughTheHub(t *testing.T) {
	const iss, res = "https://localhost", "https://localhost/.well-known/mercure"
	h := startHub(t, "--issuer", iss, "--resource", res)
	exp := time.Now().Add(time.Hour).Unix()
	grants := []any{map[string]any{"type": "https://mercure.rocks/authorization-detail", "actions": []any{"publish"}, "topics": []any{map[string]any{"match": "*"}}}}
	access := func(edit jwt.MapClaims, header map[string]any) string {
		c := jwt.MapClaims{"iss": iss, "aud": res, "exp": exp, "authorization_details": grants}
		for k, v := range edit {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		tok.Header["typ"] = "at+jwt"
		for k, v := range header {
			tok.Header[k] = v
		}
		key := []byte(testSecret)
		if k, ok := header["jwk"].(map[string]any); ok { // the attacker's own key, named in the header
			key, _ = base64.RawURLEncoding.DecodeString(k["k"].(string))
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	attackerKey := base64.RawURLEncoding.EncodeToString([]byte("attacker-0123456789abcdef0123456789abcdef"))
	for name, tok := range map[string]string{
		"another audience": access(jwt.MapClaims{"aud": "https://evil.example/.well-known/mercure"}, nil),
		"a foreign issuer": access(jwt.MapClaims{"iss": "https://evil.example"}, nil),
		"no exp":           access(jwt.MapClaims{"exp": nil}, nil),
		"a draft-07 topic string": access(jwt.MapClaims{"authorization_details": []any{map[string]any{
			"type": "https://mercure.rocks/authorization-detail", "actions": []any{"publish"}, "topics": []any{"*"}}}}, nil),
		"a URL Pattern with look-ahead": access(jwt.MapClaims{"authorization_details": []any{map[string]any{
			"type": "https://mercure.rocks/authorization-detail", "actions": []any{"publish"},
			"topics": []any{map[string]any{"match": "https://localhost/books/(?=x).*", "match_type": "urlpattern"}}}}}, nil),
		"no typ":                                access(nil, map[string]any{"typ": "JWT"}),
		"signed with the key in its jwk header": access(nil, map[string]any{"jwk": map[string]any{"kty": "oct", "k": attackerKey}}),
	} {
		if status, answer := h.PublishID(tok, "t", "access-"+strings.ReplaceAll(name, " ", "-")); status != http.StatusUnauthorized {
			t.Errorf("%s: got %d %s; want 401", name, status, answer)
		}
	}
	if status, answer := h.PublishID(e2etest.PublisherToken(t, testSecret), "t", "draft-07"); status != http.StatusOK {
		t.Errorf("a draft-07 token with the same key: got %d %s; want 200", status, answer)
	}
}
