package main

import (
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/server"
)

// authFlags are serve's draft-08 flags: the trusted issuers, the hub's
// resource identifier and URL, and the token cookie.
type authFlags struct {
	issuers    issuerFlags
	resource   string
	issuerJWKS string
	hubURL     string
	cookieName string

	// Worked out by issuerList from the flags and the served address.
	effectiveResource, effectiveHubURL string
	authServers                        []string
}

func (a *authFlags) register(fs *flag.FlagSet) {
	fs.Var(&a.issuers, "issuer", "accept draft-08 access tokens (RFC 9068) whose iss is `ISS`: bare, verified with the key flags above (which keep verifying draft-07 tokens) and --issuer-jwks; or ISS=KEY with its own key (as --jwt-key), ISS=jwks:URL, ISS=discover (RFC 8414). Repeat it for several issuers, or for several keys of one")
	fs.StringVar(&a.resource, "resource", "", "the hub's resource identifier `URL` draft-08 tokens' aud must contain (default: --hub-url, else this hub's URL as served, http(s)://--addr/.well-known/mercure)")
	fs.StringVar(&a.issuerJWKS, "issuer-jwks", "", "with a bare --issuer: also verify its tokens with the key set at `URL`, or 'discover' to find it in the issuer's RFC 8414 metadata (cached, refreshed every 15 minutes)")
	fs.StringVar(&a.hubURL, "hub-url", "", "the hub's `URL` as clients reach it (https://example.com/.well-known/mercure): URL Patterns and relative topics resolve against it, metadata and Link headers name it (default: --resource when it is such a URL, else http(s)://--addr/.well-known/mercure when --addr names a host, else each request's own)")
	fs.StringVar(&a.cookieName, "cookie-name", server.DefaultCookieName, "`NAME` of the cookie subscribers' tokens may come in (draft-07's "+hub.AuthCookie+" is read too)")
}

// issuerFlags collects repeated --issuer flags.
type issuerFlags []string

func (f *issuerFlags) String() string { return strings.Join(*f, " ") }

func (f *issuerFlags) Set(v string) error {
	if _, _, err := jwtauth.ParseIssuerFlag(v); err != nil {
		return err
	}
	*f = append(*f, v)
	return nil
}

// issuerList returns the trusted issuers: bare ones bound to the key flags'
// pub and sub keys (and --issuer-jwks), the others with their own keys;
// the same ISS repeated gathers its keys. It also works out the effective
// resource identifier and hub URL for scheme://addr.
func (a *authFlags) issuerList(pub, sub *jwtauth.Key, scheme, addr string) ([]jwtauth.Issuer, error) {
	var (
		order  []string
		byID   = map[string]*jwtauth.Issuer{}
		bare   int
		jwksOK = a.issuerJWKS == ""
	)
	get := func(id string) *jwtauth.Issuer {
		if is := byID[id]; is != nil {
			return is
		}
		order = append(order, id)
		byID[id] = &jwtauth.Issuer{ID: id}
		return byID[id]
	}
	for _, spec := range a.issuers {
		c, withKey, err := jwtauth.ParseIssuerFlag(spec)
		if err != nil {
			return nil, usageErrorf("--issuer: %v", err)
		}
		is := get(c.ID)
		if !withKey {
			bare++
			if pub != nil {
				is.PublisherKeys = append(is.PublisherKeys, pub)
			}
			if sub != nil {
				is.SubscriberKeys = append(is.SubscriberKeys, sub)
			}
			switch a.issuerJWKS {
			case "":
			case "discover":
				is.Discover, jwksOK = true, true
			default:
				is.JWKSURL, jwksOK = a.issuerJWKS, true
			}
			continue
		}
		loaded, err := c.Load()
		if err != nil {
			return nil, fmt.Errorf("--issuer %s: %w", c.ID, err)
		}
		is.Keys = append(is.Keys, loaded.Keys...)
		if (loaded.JWKSURL != "" || loaded.Discover) && (is.JWKSURL != "" || is.Discover) {
			return nil, usageErrorf("--issuer %s: one key set per issuer (jwks:URL or discover, once)", c.ID)
		}
		if loaded.JWKSURL != "" {
			is.JWKSURL = loaded.JWKSURL
		}
		is.Discover = is.Discover || loaded.Discover
	}
	if !jwksOK {
		return nil, usageErrorf("--issuer-jwks needs a bare --issuer ISS (or write --issuer ISS=jwks:URL)")
	}
	if bare > 1 && a.issuerJWKS != "" {
		return nil, usageErrorf("--issuer-jwks with several bare --issuer flags: give each its key set (--issuer ISS=jwks:URL)")
	}
	issuers := make([]jwtauth.Issuer, 0, len(order))
	for _, id := range order {
		is := byID[id]
		if is.JWKSURL != "" || is.Discover {
			a.authServers = append(a.authServers, id) // a key set: an authorization server
		}
		issuers = append(issuers, *is)
	}
	if err := a.resolveURLs(scheme, addr); err != nil {
		return nil, err
	}
	return issuers, nil
}

// resolveURLs works out the hub URL and the resource identifier: each
// defaults to the other, then to the hub's URL as served at scheme://addr
// (the hub URL only when addr names a host: 0.0.0.0 is no URL a client
// reaches, so the request's own is used then).
func (a *authFlags) resolveURLs(scheme, addr string) error {
	served := scheme + "://" + addr + hub.Path
	if a.hubURL != "" {
		if err := checkHubURLFlag(a.hubURL); err != nil {
			return err
		}
	}
	a.effectiveHubURL = a.hubURL
	if a.effectiveHubURL == "" && a.resource != "" && checkHubURLFlag(a.resource) == nil {
		a.effectiveHubURL = a.resource
	}
	if a.effectiveHubURL == "" && namesHost(addr) {
		a.effectiveHubURL = served
	}
	a.effectiveResource = a.resource
	if a.effectiveResource == "" {
		a.effectiveResource = a.effectiveHubURL
	}
	if a.effectiveResource == "" {
		a.effectiveResource = served
	}
	return nil
}

// checkHubURLFlag is server.Config.HubURL's rule, as a usage error.
func checkHubURLFlag(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return usageErrorf("--hub-url %q: want an absolute http(s) URL", v)
	}
	if u.Path != hub.Path || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return usageErrorf("--hub-url %q: the path must be %s (the one the hub serves), with no query", v, hub.Path)
	}
	return nil
}

// namesHost reports whether addr (HOST:PORT) names a host and port a
// client can reach, not an unspecified address or port 0.
func namesHost(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "0" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return false
	}
	return true
}

// apply sets the server configuration the flags give.
func (a *authFlags) apply(c *server.Config) {
	c.HubURL = a.effectiveHubURL
	c.Resource = a.effectiveResource
	c.AuthorizationServers = a.authServers
	c.CookieName = a.cookieName
}

// anyIssuerKey reports whether some issuer has keys or a key set of its
// own, so the hub has a key without the key flags.
func anyIssuerKey(issuers []jwtauth.Issuer) bool {
	for _, is := range issuers {
		if len(is.Keys)+len(is.PublisherKeys)+len(is.SubscriberKeys) > 0 || is.JWKSURL != "" || is.Discover {
			return true
		}
	}
	return false
}

// bindDevKey gives the development key to the issuers that have none
// (the bare ones, with no key flag), for publishers.
func bindDevKey(issuers []jwtauth.Issuer, key *jwtauth.Key) {
	for i, is := range issuers {
		if len(is.Keys)+len(is.PublisherKeys)+len(is.SubscriberKeys) == 0 && is.JWKSURL == "" && !is.Discover {
			issuers[i].PublisherKeys = []*jwtauth.Key{key}
		}
	}
}
