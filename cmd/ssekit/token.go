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

Mints a JSON Web Token for a Mercure-protocol hub and prints it: the
"mercure" claim lists the topic selectors its bearer may publish to and
those for which it receives private updates. With neither --publish nor
--subscribe the token allows both on every topic (*).

The signing key is --key (an HMAC secret, a PEM private key, or @FILE);
without it, the development key that "ssekit serve" keeps in its data
directory. The key is only read, never created: run "ssekit serve" once on
a loopback address to create the development key.

Examples:

  ssekit token                                   # publish and subscribe to everything
  ssekit token --publish 'https://example.com/books/{id}' --ttl 1h
  ssekit token --key @private.pem --alg ES256 --subscribe '*' --payload '{"user":"alice"}'
`

func runToken(ctx context.Context, m *Main, args []string) error {
	var (
		key, alg, dataDir, payload string
		claims                     hub.Claims
		ttl                        time.Duration
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
	fs.StringVar(&payload, "payload", "", "`JSON` value for the mercure.payload claim (shown in the subscriptions API)")
	fs.DurationVar(&ttl, "ttl", 0, "the token expires after `DURATION` (exp claim; default: never)")
	// The key flags share their environment twins with "ssekit serve", so
	// that a shell set up for the hub mints tokens it accepts.
	twins := []string{"key", "alg", "data-dir"}
	serveNames := map[string]string{"key": "jwt-key", "alg": "jwt-alg", "data-dir": "data-dir"}
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
	if claims.Publish == nil && claims.Subscribe == nil {
		claims.Publish, claims.Subscribe = []string{"*"}, []string{"*"}
	}
	if ttl > 0 {
		claims.ExpiresAt = m.now().Add(ttl)
	}

	k, err := loadSigningKey(key, alg, dataDir)
	if err != nil {
		return err
	}
	token, err := jwtauth.Sign(k, claims)
	if err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, token)
	return nil
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
