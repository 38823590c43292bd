package jwtauth

import (
	"fmt"
	"net/url"
	"strings"
)

// IssuerConfig is an Issuer as configuration writes it: strings that a
// flag, an environment variable or a configuration file holds. Load turns
// it into an Issuer, reading its keys.
//
//	{"id": "https://app.example", "keys": ["@/etc/ssekit/app.pem"]}
//	{"id": "https://auth.example", "discover": true}
type IssuerConfig struct {
	// ID is the issuer identifier, the "iss" of its tokens, byte for
	// byte. Required.
	ID string `json:"id"`
	// Keys verify both publishers' and subscribers' tokens; each is what
	// LoadKey reads: an HMAC secret, a PEM public key or certificate, a
	// JWK (or a JWK Set's keys), or "@FILE".
	Keys []string `json:"keys,omitempty"`
	// PublisherKeys verify publishers' tokens only, SubscriberKeys
	// subscribers' tokens only.
	PublisherKeys  []string `json:"publisher_keys,omitempty"`
	SubscriberKeys []string `json:"subscriber_keys,omitempty"`
	// Alg is the algorithm of the keys above; "" derives it from each key
	// (PEM, JWK), and means HS256 for a secret.
	Alg string `json:"alg,omitempty"`
	// JWKSURL is the issuer's key set (RFC 7517), fetched, cached and
	// refreshed; Discover finds it in the issuer's RFC 8414 metadata.
	// At most one of them.
	JWKSURL  string `json:"jwks_url,omitempty"`
	Discover bool   `json:"discover,omitempty"`
}

// Load reads c's keys and returns the Issuer New takes. Errors name the
// issuer and the key.
func (c IssuerConfig) Load() (Issuer, error) {
	is := Issuer{ID: c.ID, JWKSURL: c.JWKSURL, Discover: c.Discover}
	if c.ID == "" {
		return is, fmt.Errorf("%w: an issuer without an id", ErrBadConfig)
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return is, fmt.Errorf("%w: issuer %q: jwks_url %q is not an http(s) URL", ErrBadConfig, c.ID, c.JWKSURL)
		}
	}
	load := func(what string, specs []string) ([]*Key, error) {
		var keys []*Key
		for i, spec := range specs {
			k, err := LoadKey(c.Alg, spec)
			if err != nil {
				return nil, fmt.Errorf("issuer %q: %s %d: %w", c.ID, what, i+1, err)
			}
			keys = append(keys, k)
		}
		return keys, nil
	}
	var err error
	if is.Keys, err = load("key", c.Keys); err != nil {
		return is, err
	}
	if is.PublisherKeys, err = load("publisher key", c.PublisherKeys); err != nil {
		return is, err
	}
	if is.SubscriberKeys, err = load("subscriber key", c.SubscriberKeys); err != nil {
		return is, err
	}
	return is, nil
}

// ParseIssuerFlag reads the flag form of an issuer, "ISS=KEY": ISS is the
// issuer identifier (RFC 8414 identifiers have no query, so the first "="
// ends it) and KEY is one of
//
//	a key as LoadKey reads it   (a secret, PEM, a JWK, @FILE)
//	jwks:URL                    its key set at URL
//	discover                    its key set found by RFC 8414 discovery
//
// A bare "ISS" (no "=") returns ok false: the caller binds its own keys.
func ParseIssuerFlag(spec string) (c IssuerConfig, ok bool, err error) {
	id, key, ok := strings.Cut(spec, "=")
	c.ID = id
	if id == "" {
		return c, ok, fmt.Errorf("%w: issuer %q: empty issuer identifier (want ISS or ISS=KEY)", ErrBadConfig, spec)
	}
	if !ok {
		return c, false, nil
	}
	switch {
	case key == "":
		return c, true, fmt.Errorf("%w: issuer %q: empty key after '='", ErrBadConfig, id)
	case key == "discover":
		c.Discover = true
	case strings.HasPrefix(key, "jwks:"):
		c.JWKSURL = strings.TrimPrefix(key, "jwks:")
	default:
		c.Keys = []string{key}
	}
	return c, true, nil
}
