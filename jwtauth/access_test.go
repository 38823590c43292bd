package jwtauth_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
)

const (
	testIssuer   = "https://app.example"
	otherIssuer  = "https://other.example"
	testResource = "https://hub.example/.well-known/mercure"
	// accessSecret is the first issuer's HS256 key, legacySecret the
	// draft-07 key: they differ, so a test shows which one verified.
	accessSecret = "access-secret-0123456789abcdefghijklmn"
	legacySecret = "legacy-secret-0123456789abcdefghijklmn"
)

// detail is one Mercure authorization detail as a token writes it.
func detail(actions []any, topics []any, extra map[string]any) map[string]any {
	d := map[string]any{"type": jwtauth.MercureDetailType, "actions": actions, "topics": topics}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

func all(match string) []any { return []any{map[string]any{"match": match}} }

// accessClaims are the claims of a valid access token of testIssuer with
// details, changed by edit (a nil value deletes a claim).
func accessClaims(details []any, edit map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": testIssuer, "aud": testResource, "exp": float64(time.Now().Add(time.Hour).Unix()),
		"authorization_details": details,
	}
	for k, v := range edit {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

var atJWT = map[string]any{"typ": "at+jwt"}

func TestAccessTokens(t *testing.T) {
	ec := testEC256()
	esKey := mustKey(t, "ES256", &ec.PublicKey)
	cfg := jwtauth.Config{
		PublisherKey: mustKey(t, "HS256", legacySecret),
		Issuers: []jwtauth.Issuer{
			{ID: testIssuer, Keys: []*jwtauth.Key{mustKey(t, "HS256", accessSecret)}},
			{ID: otherIssuer, PublisherKeys: []*jwtauth.Key{esKey}},
		},
		Resource: testResource,
		ValidateMatcher: func(m hub.TokenMatcher) error {
			if strings.Contains(m.Match, "(?=") {
				return errors.New("look-ahead: not RE2")
			}
			return nil
		},
	}
	pubSub := []any{
		detail([]any{"publish"}, all("*"), nil),
		detail([]any{"subscribe"}, all("*"), nil),
	}
	hs := func(c jwt.MapClaims, header map[string]any) string {
		return raw(t, jwt.SigningMethodHS256, []byte(accessSecret), c, header)
	}
	many := func(n int, each func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = each(i)
		}
		return out
	}
	past := float64(time.Now().Add(-time.Hour).Unix())
	future := float64(time.Now().Add(time.Hour).Unix())

	type roleT int
	const (
		publisher roleT = iota
		subscriber
	)
	tests := []struct {
		name  string
		as    roleT
		token string
		// want is nil for a refusal; reason is then a substring of the error.
		want   *hub.Claims
		reason string
	}{
		{
			name: "Mercure's conformance token",
			token: hs(jwt.MapClaims{"aud": testResource, "iss": testIssuer, "exp": 4102444800,
				"authorization_details": pubSub}, map[string]any{"typ": "at+jwt"}),
			want: &hub.Claims{AccessToken: true, ExpiresAt: time.Unix(4102444800, 0), Details: []hub.AuthorizationDetail{
				{Publish: true, Topics: []hub.TokenMatcher{{Match: "*", Type: "exact"}}},
				{Subscribe: true, Topics: []hub.TokenMatcher{{Match: "*", Type: "exact"}}},
			}},
		},
		{
			name: "every member, in order",
			as:   subscriber,
			token: hs(accessClaims([]any{
				map[string]any{"type": "https://other.example/detail", "anything": 1}, // another API's: skipped
				detail([]any{"subscribe", "frobnicate"}, []any{
					map[string]any{"match": "https://app.example/books/1"},
					map[string]any{"match": "https://app.example/users/:id", "match_type": "urlpattern"},
				}, map[string]any{"payload": map[string]any{"tenant": "t1"}}),
				detail([]any{"publish", "subscribe"}, []any{map[string]any{"match": "/x", "match_type": "exact"}}, nil),
			}, map[string]any{"aud": []any{"https://elsewhere.example", testResource}, "nbf": past, "iat": past,
				"sub": "u-1", "jti": "urn:uuid:1", "client_id": testIssuer}), atJWT),
			want: &hub.Claims{AccessToken: true, Details: []hub.AuthorizationDetail{
				{Subscribe: true, Topics: []hub.TokenMatcher{{Match: "https://app.example/books/1", Type: "exact"},
					{Match: "https://app.example/users/:id", Type: "urlpattern"}}, Payload: json.RawMessage(`{"tenant":"t1"}`)},
				{Publish: true, Subscribe: true, Topics: []hub.TokenMatcher{{Match: "/x", Type: "exact"}}},
			}},
		},
		{
			name:  "typ application/AT+JWT",
			token: hs(accessClaims(pubSub, nil), map[string]any{"typ": "application/AT+JWT"}),
			want:  &hub.Claims{AccessToken: true},
		},
		{
			name:  "at+jwt with neither claim grants nothing",
			token: hs(accessClaims(nil, map[string]any{"authorization_details": nil}), atJWT),
			want:  &hub.Claims{AccessToken: true},
		},
		{
			name:  "only other types of details grants nothing",
			token: hs(accessClaims([]any{map[string]any{"type": "urn:x"}}, nil), atJWT),
			want:  &hub.Claims{AccessToken: true},
		},
		{
			name:  "authorization_details wins over a mercure claim",
			token: hs(accessClaims(pubSub, map[string]any{"mercure": map[string]any{"publish": []string{"*"}}}), atJWT),
			want:  &hub.Claims{AccessToken: true},
		},
		{
			name:  "ES256 issuer with a kid",
			token: raw(t, jwt.SigningMethodES256, ec, accessClaims(pubSub, map[string]any{"iss": otherIssuer}), map[string]any{"typ": "at+jwt", "kid": "k1"}),
			want:  &hub.Claims{AccessToken: true},
		},
		{
			name:  "draft-07 token keeps draft-07 rules",
			token: raw(t, jwt.SigningMethodHS256, []byte(legacySecret), mercure([]string{"*"}, nil, nil), nil),
			want:  &hub.Claims{Publish: []string{"*"}},
		},

		// The header, the issuer and its keys.
		{name: "no typ", token: hs(accessClaims(pubSub, nil), nil), reason: `"typ": "at+jwt"`},
		{name: "typ JWT", token: hs(accessClaims(pubSub, nil), map[string]any{"typ": "JWT"}), reason: `"typ": "at+jwt"`},
		{name: "typ not a string", token: hs(accessClaims(pubSub, nil), map[string]any{"typ": 1}), reason: `"typ": "at+jwt"`},
		{name: "no iss", token: hs(accessClaims(pubSub, map[string]any{"iss": nil}), atJWT), reason: "has no iss"},
		{name: "unknown iss", token: hs(accessClaims(pubSub, map[string]any{"iss": "https://evil.example"}), atJWT), reason: "issuer not trusted"},
		{name: "iss differs in case", token: hs(accessClaims(pubSub, map[string]any{"iss": "https://APP.example"}), atJWT), reason: "issuer not trusted"},
		{name: "iss not a string", token: hs(accessClaims(pubSub, map[string]any{"iss": 7}), atJWT), reason: "malformed"},
		{name: "another issuer's key", token: raw(t, jwt.SigningMethodES256, ec, accessClaims(pubSub, nil), atJWT), reason: "no key of the issuer"},
		{name: "signed for the other issuer with this one's key", token: hs(accessClaims(pubSub, map[string]any{"iss": otherIssuer}), atJWT), reason: "no key of the issuer"},
		{name: "the draft-07 key", token: raw(t, jwt.SigningMethodHS256, []byte(legacySecret), accessClaims(pubSub, nil), atJWT), reason: "invalid signature"},
		{name: "a publisher-only key for a subscriber", as: subscriber, token: raw(t, jwt.SigningMethodES256, ec, accessClaims(pubSub, map[string]any{"iss": otherIssuer}), atJWT), reason: "no key of the issuer"},
		{name: "alg none", token: raw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, accessClaims(pubSub, nil), atJWT), reason: "no key of the issuer"},
		{name: "a key in the jwk header", token: func() string {
			attacker := genEC(ec.Curve)
			return raw(t, jwt.SigningMethodES256, attacker, accessClaims(pubSub, map[string]any{"iss": otherIssuer}),
				map[string]any{"typ": "at+jwt", "jwk": map[string]any{"kty": "EC", "crv": "P-256"}, "jku": "https://evil.example/jwks"})
		}(), reason: "invalid signature"},
		{name: "crit header", token: hs(accessClaims(pubSub, nil), map[string]any{"typ": "at+jwt", "crit": []string{"b64"}}), reason: "critical header"},

		// Registered claims.
		{name: "no aud", token: hs(accessClaims(pubSub, map[string]any{"aud": nil}), atJWT), reason: "audience"},
		{name: "another aud", token: hs(accessClaims(pubSub, map[string]any{"aud": "https://hub.example/"}), atJWT), reason: "audience"},
		{name: "aud array without the resource", token: hs(accessClaims(pubSub, map[string]any{"aud": []any{"a", "b"}}), atJWT), reason: "audience"},
		{name: "no exp", token: hs(accessClaims(pubSub, map[string]any{"exp": nil}), atJWT), reason: "no expiry"},
		{name: "expired", token: hs(accessClaims(pubSub, map[string]any{"exp": past}), atJWT), reason: "expired"},
		{name: "nbf in the future", token: hs(accessClaims(pubSub, map[string]any{"nbf": future}), atJWT), reason: "not valid yet"},
		{name: "exp not a number", token: hs(accessClaims(pubSub, map[string]any{"exp": "soon"}), atJWT), reason: "malformed"},

		// authorization_details, all or nothing.
		{name: "details an object", token: hs(accessClaims(nil, map[string]any{"authorization_details": map[string]any{}}), atJWT), reason: "not an array"},
		{name: "details null", token: hs(jwt.MapClaims{"iss": testIssuer, "aud": testResource, "exp": future, "authorization_details": nil}, atJWT), reason: "not an array"},
		{name: "a detail not an object", token: hs(accessClaims([]any{"publish"}, nil), atJWT), reason: "detail 0 is not an object"},
		{name: "a detail without type", token: hs(accessClaims([]any{map[string]any{"actions": []any{"publish"}}}, nil), atJWT), reason: "no string type"},
		{name: "a detail type not a string", token: hs(accessClaims([]any{map[string]any{"type": 1}}, nil), atJWT), reason: "no string type"},
		{name: "no actions", token: hs(accessClaims([]any{detail(nil, all("*"), nil)}, nil), atJWT), reason: "actions"},
		{name: "empty actions", token: hs(accessClaims([]any{detail([]any{}, all("*"), nil)}, nil), atJWT), reason: "actions"},
		{name: "a non-string action", token: hs(accessClaims([]any{detail([]any{"publish", 1}, all("*"), nil)}, nil), atJWT), reason: "not a string"},
		{name: "no topics", token: hs(accessClaims([]any{detail([]any{"publish"}, nil, nil)}, nil), atJWT), reason: "topics"},
		{name: "empty topics", token: hs(accessClaims([]any{detail([]any{"publish"}, []any{}, nil)}, nil), atJWT), reason: "topics"},
		{name: "a draft-07 string topic", token: hs(accessClaims([]any{detail([]any{"publish"}, []any{"*"}, nil)}, nil), atJWT), reason: "not a {match, match_type} object"},
		{name: "no match", token: hs(accessClaims([]any{detail([]any{"publish"}, []any{map[string]any{"match_type": "exact"}}, nil)}, nil), atJWT), reason: "no match"},
		{name: "empty match", token: hs(accessClaims([]any{detail([]any{"publish"}, all(""), nil)}, nil), atJWT), reason: "no match"},
		{name: "match not a string", token: hs(accessClaims([]any{detail([]any{"publish"}, []any{map[string]any{"match": 1}}, nil)}, nil), atJWT), reason: "must be strings"},
		{name: "unknown match_type", token: hs(accessClaims([]any{detail([]any{"publish"}, []any{map[string]any{"match": "x", "match_type": "regex"}}, nil)}, nil), atJWT), reason: `unsupported match_type "regex"`},
		{name: "match_type in another case", token: hs(accessClaims([]any{detail([]any{"publish"}, []any{map[string]any{"match": "x", "match_type": "URLPattern"}}, nil)}, nil), atJWT), reason: "unsupported match_type"},
		{name: "control character in match", token: hs(accessClaims([]any{detail([]any{"publish"}, all("a\u0000b"), nil)}, nil), atJWT), reason: "control or format character U+0000"},
		{name: "C1 character in match", token: hs(accessClaims([]any{detail([]any{"publish"}, all("a\u0085b"), nil)}, nil), atJWT), reason: "U+0085"},
		{name: "format character in match", token: hs(accessClaims([]any{detail([]any{"publish"}, all("a\u200bb"), nil)}, nil), atJWT), reason: "U+200B"},
		{name: "match too long", token: hs(accessClaims([]any{detail([]any{"publish"}, all(strings.Repeat("a", jwtauth.MaxMatchBytes+1)), nil)}, nil), atJWT), reason: "longer than 4096"},
		{name: "matcher the hub cannot compile", token: hs(accessClaims([]any{detail([]any{"subscribe"}, []any{map[string]any{"match": "/a/(?=b)", "match_type": "urlpattern"}}, nil)}, nil), atJWT), reason: "invalid urlpattern matcher"},
		{name: "payload a string", token: hs(accessClaims([]any{detail([]any{"subscribe"}, all("*"), map[string]any{"payload": "x"})}, nil), atJWT), reason: "payload must be an object"},
		{name: "payload an array", token: hs(accessClaims([]any{detail([]any{"subscribe"}, all("*"), map[string]any{"payload": []any{}})}, nil), atJWT), reason: "payload must be an object"},
		{name: "one bad detail after good ones", token: hs(accessClaims(append(append([]any{}, pubSub...), detail([]any{"publish"}, []any{"x"}, nil)), nil), atJWT), reason: "detail 2"},
		{name: "too many details", token: hs(accessClaims(many(jwtauth.MaxDetails+1, func(int) any { return map[string]any{"type": "urn:x"} }), nil), atJWT), reason: "101 details"},
		{name: "too many topics over details", token: hs(accessClaims(many(2, func(i int) any {
			return detail([]any{"subscribe"}, many(jwtauth.MaxDetailTopics/2+1, func(j int) any { return map[string]any{"match": fmt.Sprint("/", i, "/", j)} }), nil)
		}), nil), atJWT), reason: "more than 100 topic matchers"},
	}
	a, err := jwtauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verify := a.VerifyPublisher
			if tt.as == subscriber {
				verify = a.VerifySubscriber
			}
			got, err := verify(tt.token)
			if tt.want == nil {
				checkRefusal(t, got, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want claims", err)
			}
			g := *got // shared with the cache: not to be changed
			if tt.want.ExpiresAt.IsZero() {
				g.ExpiresAt = time.Time{} // exp is "in an hour": not compared
			}
			checkClaims(t, &g, tt.want)
			if got.AccessToken != tt.want.AccessToken {
				t.Errorf("got AccessToken %v; want %v", got.AccessToken, tt.want.AccessToken)
			}
			if tt.want.Details != nil {
				g, _ := json.Marshal(got.Details)
				w, _ := json.Marshal(tt.want.Details)
				if string(g) != string(w) {
					t.Errorf("got Details %s; want %s", g, w)
				}
			}
		})
	}
}

func TestAccessTokenConfig(t *testing.T) {
	key := mustKey(t, "HS256", accessSecret)
	for name, cfg := range map[string]jwtauth.Config{
		"issuers without a resource": {Issuers: []jwtauth.Issuer{{ID: testIssuer, Keys: []*jwtauth.Key{key}}}},
		"an issuer without an ID":    {Resource: testResource, Issuers: []jwtauth.Issuer{{Keys: []*jwtauth.Key{key}}}},
		"an issuer twice":            {Resource: testResource, Issuers: []jwtauth.Issuer{{ID: testIssuer, Keys: []*jwtauth.Key{key}}, {ID: testIssuer, Keys: []*jwtauth.Key{key}}}},
		"an issuer without keys":     {Resource: testResource, Issuers: []jwtauth.Issuer{{ID: testIssuer}}},
		"a JWKS URL that is not one": {Resource: testResource, Issuers: []jwtauth.Issuer{{ID: testIssuer, JWKSURL: "file:///etc/jwks"}}},
		"discovery of a non-URL ID":  {Resource: testResource, Issuers: []jwtauth.Issuer{{ID: "app", Discover: true}}},
	} {
		if _, err := jwtauth.New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	// Issuers alone, with no draft-07 key: draft-07 tokens are refused.
	a, err := jwtauth.New(jwtauth.Config{Resource: testResource, Issuers: []jwtauth.Issuer{{ID: testIssuer, Keys: []*jwtauth.Key{key}}}})
	if err != nil {
		t.Fatal(err)
	}
	legacy := raw(t, jwt.SigningMethodHS256, []byte(accessSecret), mercure([]string{"*"}, nil, nil), nil)
	if _, err := a.VerifyPublisher(legacy); err == nil || !strings.Contains(err.Error(), "draft-07 tokens are not accepted") {
		t.Errorf("draft-07 token without a draft-07 key: got %v; want refused", err)
	}
}

// TestSignAccess: a token SignAccess mints is an access token the
// Authenticator accepts with the same details; what a hub would refuse
// is refused when minting.
func TestSignAccess(t *testing.T) {
	key := mustKey(t, "HS256", accessSecret)
	a, err := jwtauth.New(jwtauth.Config{Resource: testResource, Issuers: []jwtauth.Issuer{{ID: testIssuer, Keys: []*jwtauth.Key{key}}}})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	details := []hub.AuthorizationDetail{
		{Publish: true, Topics: []hub.TokenMatcher{{Match: "*", Type: "exact"}}},
		{Subscribe: true, Topics: []hub.TokenMatcher{{Match: "https://app.example/books/:id", Type: "urlpattern"}}, Payload: json.RawMessage(`{"user":"alice"}`)},
	}
	tok, err := jwtauth.SignAccess(key, jwtauth.AccessClaims{Issuer: testIssuer, Audience: testResource, ExpiresAt: exp, Subject: "alice", Details: details})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.VerifySubscriber(tok)
	if err != nil {
		t.Fatalf("the minted token is refused: %v", err)
	}
	g, _ := json.Marshal(c.Details)
	w, _ := json.Marshal(details)
	if !c.AccessToken || string(g) != string(w) || !c.ExpiresAt.Equal(exp) {
		t.Errorf("got AccessToken %v, Details %s, exp %v; want true, %s, %v", c.AccessToken, g, c.ExpiresAt, w, exp)
	}
	for name, bad := range map[string]jwtauth.AccessClaims{
		"no issuer":         {Audience: testResource, ExpiresAt: exp, Details: details},
		"no audience":       {Issuer: testIssuer, ExpiresAt: exp, Details: details},
		"no expiry":         {Issuer: testIssuer, Audience: testResource, Details: details},
		"a detail no topic": {Issuer: testIssuer, Audience: testResource, ExpiresAt: exp, Details: []hub.AuthorizationDetail{{Publish: true}}},
		"unknown type":      {Issuer: testIssuer, Audience: testResource, ExpiresAt: exp, Details: []hub.AuthorizationDetail{{Publish: true, Topics: []hub.TokenMatcher{{Match: "x", Type: "regex"}}}}},
		"payload not an object": {Issuer: testIssuer, Audience: testResource, ExpiresAt: exp,
			Details: []hub.AuthorizationDetail{{Subscribe: true, Topics: []hub.TokenMatcher{{Match: "*"}}, Payload: json.RawMessage(`"x"`)}}},
	} {
		if _, err := jwtauth.SignAccess(key, bad); err == nil {
			t.Errorf("%s: minted; want an error", name)
		}
	}
}
