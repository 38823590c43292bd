package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
)

const tokenUsage = `Usage: ssekit token [flags]

Mints a JSON Web Token for a Mercure-protocol hub and prints it, listing
the topics its bearer may publish to and those for which it receives
private updates. With none of --publish, --subscribe and their
-urlpattern twins the token allows both on every topic (*).

Two generations (--draft): with --issuer (or --draft 08) a draft-08 access
token (RFC 9068: "typ" at+jwt, iss, aud = --audience, exp, and
authorization_details whose topics are exact matchers, or URL Patterns with
--publish-urlpattern and --subscribe-urlpattern), as Mercure 1.0 hubs and
ssekit hubs started with --issuer verify; otherwise a draft-07 token (the
"mercure" claim, whose selectors may be URI templates).

The signing key is --key (an HMAC secret, a PEM private key, or @FILE);
without it, the development key that "ssekit serve" keeps in its data
directory. The key is only read, never created: run "ssekit serve" once on
a loopback address to create the development key.

Examples:

  ssekit token                                   # publish and subscribe to everything
  ssekit token --publish 'https://example.com/books/{id}' --ttl 1h
  ssekit token --key @private.pem --alg ES256 --subscribe '*' --payload '{"user":"alice"}'
  ssekit token --issuer https://app.example --audience https://hub.example/.well-known/mercure \
    --subscribe-urlpattern 'https://app.example/books/:id' --ttl 1h
`

// defaultAccessTTL is an access token's lifetime without --ttl: draft-08
// tokens must expire.
const defaultAccessTTL = time.Hour

func runToken(ctx context.Context, m *Main, args []string) error {
	var (
		key, alg, dataDir, payload string
		claims                     hub.Claims
		ttl                        time.Duration
		draft, issuer, audience    string
		subject                    string
		pubPatterns, subPatterns   []string
	)
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.StringVar(&key, "key", "", "signing `KEY`: an HMAC secret, a PEM private key, or @FILE (default: the development key in --data-dir)")
	fs.StringVar(&alg, "alg", "", "`ALG` of --key: HS256, RS256, ES256, … (default: HS256 for a secret, from the key for PEM)")
	fs.StringVar(&dataDir, "data-dir", "ssekit-data", "`DIR` of \"ssekit serve\" holding the development key")
	fs.Func("publish", "topic `SELECTOR` the bearer may publish to (repeatable: *, a topic, or a URI template)", func(s string) error {
		claims.Publish = append(claims.Publish, s)
		return nil
	})
	fs.Func("subscribe", "topic `SELECTOR` for which the bearer receives private updates (repeatable)", func(s string) error {
		claims.Subscribe = append(claims.Subscribe, s)
		return nil
	})
	fs.Func("publish-urlpattern", "URL `PATTERN` the bearer may publish to (repeatable; draft-08 only)", func(s string) error {
		pubPatterns = append(pubPatterns, s)
		return nil
	})
	fs.Func("subscribe-urlpattern", "URL `PATTERN` for which the bearer receives private updates (repeatable; draft-08 only)", func(s string) error {
		subPatterns = append(subPatterns, s)
		return nil
	})
	fs.StringVar(&payload, "payload", "", "`JSON` value for the mercure.payload claim (draft-08: an object, the subscribe detail's payload)")
	fs.DurationVar(&ttl, "ttl", 0, "the token expires after `DURATION` (exp claim; default: never for draft-07, 1h for draft-08)")
	fs.StringVar(&draft, "draft", "", "token generation: `08` (an RFC 9068 access token) or 07 (the mercure claim); default: 08 with --issuer, else 07")
	fs.StringVar(&issuer, "issuer", "", "draft-08: the `ISS` the hub trusts for this key")
	fs.StringVar(&audience, "audience", "", "draft-08: the hub's resource identifier `URL` (aud), e.g. https://hub.example/.well-known/mercure")
	fs.StringVar(&subject, "subject", "", "draft-08: the bearer's `SUB` (optional)")
	// The key flags share their environment twins with "ssekit serve", so
	// that a shell set up for the hub mints tokens it accepts.
	twins := []string{"key", "alg", "data-dir", "issuer", "audience"}
	serveNames := map[string]string{"key": "jwt-key", "alg": "jwt-alg", "data-dir": "data-dir", "issuer": "issuer", "audience": "resource"}
	for _, name := range twins {
		f := fs.Lookup(name)
		f.Usage += " [" + envName(serveNames[name]) + "]"
	}

	rest, err := m.parseFlags(fs, tokenUsage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("takes no arguments, got %q (see 'ssekit token --help')", rest[0])
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range twins {
		if v := m.getenv(envName(serveNames[name])); v != "" && !set[name] {
			if err := fs.Set(name, v); err != nil {
				return usageErrorf("%s=%q: %v", envName(serveNames[name]), v, err)
			}
		}
	}
	if ttl < 0 {
		return usageErrorf("--ttl must not be negative")
	}
	if payload != "" {
		if !json.Valid([]byte(payload)) {
			return usageErrorf("--payload is not valid JSON: %q", payload)
		}
		claims.Payload = json.RawMessage(payload)
	}
	switch draft {
	case "":
		draft = "07"
		if issuer != "" {
			draft = "08"
		}
	case "07", "08":
	default:
		return usageErrorf("--draft %q: use 08 or 07", draft)
	}
	if draft == "07" && (issuer != "" || audience != "" || subject != "" || pubPatterns != nil || subPatterns != nil) {
		return usageErrorf("--issuer, --audience, --subject and the -urlpattern flags make draft-08 tokens, not --draft 07")
	}
	if draft == "08" {
		if issuer == "" || audience == "" {
			return usageErrorf("a draft-08 token needs --issuer and --audience (the hub's --issuer and --resource)")
		}
		if ttl == 0 {
			ttl = defaultAccessTTL
		}
	}
	if claims.Publish == nil && claims.Subscribe == nil && pubPatterns == nil && subPatterns == nil {
		claims.Publish, claims.Subscribe = []string{"*"}, []string{"*"}
	}
	if ttl > 0 {
		claims.ExpiresAt = m.now().Add(ttl)
	}

	k, err := loadSigningKey(key, alg, dataDir)
	if err != nil {
		return err
	}
	var token string
	if draft == "08" {
		token, err = jwtauth.SignAccess(k, jwtauth.AccessClaims{
			Issuer: issuer, Audience: audience, Subject: subject, ExpiresAt: claims.ExpiresAt,
			Details: accessDetails(claims, pubPatterns, subPatterns),
		})
	} else {
		token, err = jwtauth.Sign(k, claims)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, token)
	return nil
}

// accessDetails turns the --publish and --subscribe flags (exact
// matchers) and their -urlpattern twins into at most two Mercure
// authorization details, the subscribe one carrying --payload.
func accessDetails(c hub.Claims, pubPatterns, subPatterns []string) []hub.AuthorizationDetail {
	matchers := func(exact, patterns []string) []hub.TokenMatcher {
		var out []hub.TokenMatcher
		for _, s := range exact {
			out = append(out, hub.TokenMatcher{Match: s, Type: "exact"})
		}
		for _, s := range patterns {
			out = append(out, hub.TokenMatcher{Match: s, Type: "urlpattern"})
		}
		return out
	}
	var details []hub.AuthorizationDetail
	if t := matchers(c.Publish, pubPatterns); t != nil {
		details = append(details, hub.AuthorizationDetail{Publish: true, Topics: t})
	}
	if t := matchers(c.Subscribe, subPatterns); t != nil {
		details = append(details, hub.AuthorizationDetail{Subscribe: true, Topics: t, Payload: c.Payload})
	}
	return details
}

// loadSigningKey reads --key, or the development secret "ssekit serve"
// keeps in dataDir. It never creates one: a token signed with a secret
// that no hub knows would only fail later, with a less helpful message.
func loadSigningKey(spec, alg, dataDir string) (*jwtauth.Key, error) {
	if spec != "" {
		k, err := jwtauth.LoadKey(alg, spec)
		if err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(dataDir, "dev-jwt-secret")
	secret, err := jwtauth.ReadKeyMaterial("@" + path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no --key and no development key at %s: run 'ssekit serve --data-dir %s' once on a loopback address to create it, or pass --key SECRET (or --key @FILE)", path, dataDir)
	}
	if err != nil {
		return nil, err
	}
	if alg == "" {
		alg = "HS256"
	}
	k, err := jwtauth.NewKey(alg, secret)
	if err != nil {
		return nil, fmt.Errorf("development key %s: %w", path, err)
	}
	return k, nil
}
