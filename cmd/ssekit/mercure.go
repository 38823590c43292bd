package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
)

// The Mercure drafts the client commands (publish, listen, bench) speak.
// draft-07 subscribes with topic= and lastEventID and takes tokens with a
// "mercure" claim; draft-08 (Mercure 1.0) subscribes with match= and
// last_event_id and takes RFC 9068 access tokens (typ at+jwt).
const (
	draft07   = "07"
	draft08   = "08"
	draftAuto = "auto"
)

// detectTimeout bounds each request of draft detection.
const detectTimeout = 5 * time.Second

// mercureClient is what the client commands know about the hub and how
// they authenticate to it: the --draft flag and the key flags that mint
// a token when none is given.
type mercureClient struct {
	draft    string // 07, 08 or auto (flag)
	key, alg string // --jwt-key, --jwt-alg: mint tokens with this key
	issuer   string // --issuer: iss of minted draft-08 tokens
	audience string // --audience: aud of minted draft-08 tokens (default: the hub's metadata resource, else its URL)

	// After resolve: how the draft was decided, and the resource
	// identifier the hub's metadata document names ("" when none).
	via      string
	resource string
}

// addDraftFlag defines --draft on fs.
func addDraftFlag(fs *flag.FlagSet, mc *mercureClient) {
	mc.draft = draftAuto
	fs.Func("draft", "the hub's Mercure `DRAFT`: 07 (topic=, lastEventID, mercure-claim tokens), 08 (Mercure 1.0: match=, last_event_id, at+jwt tokens) or auto (ask the hub: its RFC 9728 metadata, else whether it takes match=) (default auto)", func(s string) error {
		switch s {
		case draft07, draft08, draftAuto:
			mc.draft = s
			return nil
		case "7", "8":
			mc.draft = "0" + s
			return nil
		}
		return fmt.Errorf("want 07, 08 or auto, got %q", s)
	})
}

// addMintFlags defines the flags that mint a token from a key, with the
// environment twins of "ssekit serve" so that a shell set up for the hub
// makes tokens it accepts.
func addMintFlags(fs *flag.FlagSet, mc *mercureClient, what string) {
	fs.StringVar(&mc.key, "jwt-key", "", "sign a token for "+what+" with `KEY` (an HMAC secret, a PEM private key or @FILE) instead of giving one [SSEKIT_JWT_KEY]")
	fs.StringVar(&mc.alg, "jwt-alg", "", "`ALG` of --jwt-key (default: HS256 for a secret, from the key for PEM) [SSEKIT_JWT_ALG]")
	fs.StringVar(&mc.issuer, "issuer", "", "draft-08: the `ISS` of minted access tokens, one the hub trusts for --jwt-key [SSEKIT_ISSUER]")
	fs.StringVar(&mc.audience, "audience", "", "draft-08: the `URL` minted access tokens are for (aud; default: the resource of the hub's metadata, else the hub URL) [SSEKIT_RESOURCE]")
}

// mintEnv fills the mint flags left unset from their environment twins.
func (m *Main) mintEnv(fs *flag.FlagSet, mc *mercureClient) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, dst := range map[string]*string{"jwt-key": &mc.key, "jwt-alg": &mc.alg, "issuer": &mc.issuer, "audience": &mc.audience} {
		if !set[name] && fs.Lookup(name) != nil {
			if v := m.getenv(envName(name)); v != "" {
				*dst = v
			}
		}
	}
	if !set["audience"] && mc.audience == "" {
		mc.audience = m.getenv("SSEKIT_RESOURCE")
	}
}

// metadataURL is the RFC 9728 protected-resource metadata URL of hubURL:
// its path prefixed with /.well-known/oauth-protected-resource.
func metadataURL(hubURL string) (string, error) {
	u, err := url.Parse(hubURL)
	if err != nil {
		return "", err
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + path, nil
}

// resolve decides the draft when it is auto, asking the hub at hubURL:
// its RFC 9728 metadata document (which only draft-08 hubs serve) names
// it 08 and gives the resource identifier; without one, a subscription
// with match= (answered by draft-08 hubs, refused with 400 by draft-07
// ones) or an RFC 6750 challenge decides; else draft-07. token is sent
// with the probe.
func (m *Main) resolve(ctx context.Context, client *http.Client, mc *mercureClient, hubURL, token string) error {
	if mc.draft != draftAuto && mc.draft != "" {
		mc.via = "--draft"
		// The resource identifier still helps minting tokens.
		if mc.draft == draft08 && mc.key != "" && mc.audience == "" {
			mc.resource, _ = fetchResource(ctx, client, hubURL)
		}
		return nil
	}
	res, err := fetchResource(ctx, client, hubURL)
	if err != nil {
		return err
	}
	if res != "" {
		mc.draft, mc.via, mc.resource = draft08, "its metadata document", res
		return nil
	}
	mc.draft, mc.via, err = probeMatch(ctx, client, hubURL, token)
	return err
}

// fetchResource returns the resource of the hub's metadata document, ""
// when it has none (404, or not JSON); only a network failure is an error.
func fetchResource(ctx context.Context, client *http.Client, hubURL string) (string, error) {
	mu, err := metadataURL(hubURL)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, detectTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mu, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking %s which Mercure draft it speaks: %w", hubURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil
	}
	var doc struct {
		Resource string `json:"resource"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&doc); err != nil || doc.Resource == "" {
		return "", nil //nolint:nilerr // not a metadata document: decide otherwise
	}
	return doc.Resource, nil
}

// probeMatch subscribes to a topic nobody publishes with match= and looks
// at the answer's status only.
func probeMatch(ctx context.Context, client *http.Client, hubURL, token string) (draft, via string, err error) {
	u, err := url.Parse(hubURL)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	q.Set("match", "urn:ssekit:draft-probe:"+randomHex(8))
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, detectTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("asking %s which Mercure draft it speaks: %w", hubURL, err)
	}
	resp.Body.Close() // the headers are the answer; closing ends the subscription
	switch {
	case resp.StatusCode == http.StatusOK:
		return draft08, "its answer to match=", nil
	case (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) &&
		rfc6750Challenge(resp.Header.Get("WWW-Authenticate")):
		return draft08, "its RFC 6750 challenge", nil
	}
	return draft07, "its answer to match= (" + resp.Status + ")", nil
}

// rfc6750Challenge reports whether a WWW-Authenticate value is a draft-08
// Bearer challenge (an error code or a resource_metadata pointer).
func rfc6750Challenge(v string) bool {
	l := strings.ToLower(v)
	return strings.HasPrefix(l, "bearer") && (strings.Contains(l, "error=") || strings.Contains(l, "resource_metadata="))
}

// mint signs a token granting every topic for the actions asked, in the
// resolved draft: an RFC 9068 access token for draft-08 when an issuer is
// known, else a draft-07 one (which ssekit hubs keep accepting; a hub
// that only speaks draft-08 then answers 401, and note says why).
func (mc *mercureClient) mint(hubURL string, publish, subscribe bool, exp time.Time) (token, note string, err error) {
	k, err := jwtauth.LoadKey(mc.alg, mc.key)
	if err != nil {
		return "", "", fmt.Errorf("--jwt-key: %w", err)
	}
	all := []string{"*"}
	var c hub.Claims
	if publish {
		c.Publish = all
	}
	if subscribe {
		c.Subscribe = all
	}
	c.ExpiresAt = exp
	if mc.draft != draft08 {
		t, err := jwtauth.Sign(k, c)
		return t, "", err
	}
	if mc.issuer == "" {
		t, err := jwtauth.Sign(k, c)
		return t, "the hub speaks draft-08 but no --issuer (SSEKIT_ISSUER) was given: minted a draft-07 token, which a hub that only takes access tokens refuses", err
	}
	aud := mc.audience
	if aud == "" {
		aud = mc.resource
	}
	if aud == "" {
		aud = hubURL
	}
	t, err := jwtauth.SignAccess(k, jwtauth.AccessClaims{
		Issuer: mc.issuer, Audience: aud, ExpiresAt: exp, Subject: "ssekit", ClientID: "ssekit",
		Details: accessDetails(c, nil, nil),
	})
	return t, "", err
}

// tokenDraft tells, without verifying it, which draft a token is for: 08
// for an RFC 9068 access token (typ at+jwt or authorization_details), 07
// for another JWT, "" when it is not a JWT.
func tokenDraft(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 64<<10 {
		return ""
	}
	var header struct {
		Typ string `json:"typ"`
	}
	var claims struct {
		Details json.RawMessage `json:"authorization_details"`
	}
	h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	c, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil || json.Unmarshal(h, &header) != nil || json.Unmarshal(c, &claims) != nil {
		return ""
	}
	typ := strings.TrimPrefix(strings.ToLower(header.Typ), "application/")
	if typ == "at+jwt" || claims.Details != nil {
		return draft08
	}
	return draft07
}

// tokenHint explains a 401 in terms of the drafts: the token's and
// the hub's. It returns "" when there is nothing to add.
func (mc *mercureClient) tokenHint(token string) string {
	switch td := tokenDraft(token); {
	case token == "":
		return ""
	case mc.draft == draft08 && td == draft07:
		return " (the hub speaks draft-08 and this is a draft-07 token: if it takes access tokens only, as Mercure 1.0 does, mint one with 'ssekit token --issuer ISS --audience " + mc.hubResource() + "')"
	case mc.draft == draft07 && td == draft08:
		return " (this is a draft-08 access token and the hub looks draft-07: mint one with 'ssekit token --draft 07')"
	case td == draft08:
		return " (check the token's iss and aud: the hub's --issuer and resource " + mc.hubResource() + ")"
	}
	return ""
}

func (mc *mercureClient) hubResource() string {
	if mc.resource != "" {
		return mc.resource
	}
	return "HUB-URL"
}

// urlPatternish matches a selector holding a URL Pattern group (/:name):
// with draft-08 it goes to match_urlpattern, as Mercure's suite does.
var urlPatternish = regexp.MustCompile(`/:[A-Za-z_]`)

// subscribeParams returns the query parameters subscribing to selectors
// and resuming after lastID ("" for none) in draft d: topic= and
// lastEventID for 07; for 08, match= (exact), match_urlpattern= for a
// selector with a /:name group, and last_event_id. A URI template ({…})
// has no draft-08 matcher; it keeps topic=, which dual hubs (ssekit)
// still take.
func subscribeParams(d string, selectors, patterns []string, lastID string, hasLastID bool) url.Values {
	q := url.Values{}
	for _, s := range selectors {
		switch {
		case d != draft08 || strings.ContainsAny(s, "{}"):
			q.Add("topic", s)
		case s != "*" && urlPatternish.MatchString(s):
			q.Add("match_urlpattern", s)
		default:
			q.Add("match", s)
		}
	}
	for _, p := range patterns {
		q.Add("match_urlpattern", p)
	}
	if hasLastID {
		if d == draft08 {
			q.Set("last_event_id", lastID)
		} else {
			q.Set("lastEventID", lastID)
		}
	}
	return q
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// publishDraft settles what the draft decides for "ssekit publish": the
// token minted with --jwt-key, and the refusals of draft-08 known before
// asking (type mercure is the hub's own). The hub is asked only when a
// token is to be minted or the draft is given.
func (m *Main) publishDraft(ctx context.Context, opts *publishOptions) error {
	mc := &opts.mc
	if opts.token != "" || mc.key == "" {
		if mc.draft == draft08 && opts.typ == "mercure" {
			return usageErrorf("--type mercure is reserved for the hub's own events in draft-08")
		}
		return nil
	}
	if err := m.resolve(ctx, m.httpClient(opts.insecure), mc, opts.hub, ""); err != nil {
		return err
	}
	if mc.draft == draft08 && opts.typ == "mercure" {
		return usageErrorf("--type mercure is reserved for the hub's own events in draft-08")
	}
	tok, note, err := mc.mint(opts.hub, true, false, m.now().Add(5*time.Minute))
	if err != nil {
		return err
	}
	if note != "" {
		m.logf("publish", "%s", note)
	}
	opts.token = tok
	return nil
}

// publishHint is what a refused token adds to the hub's answer: asks the
// hub its draft when --draft is auto.
func (m *Main) publishHint(ctx context.Context, opts *publishOptions) string {
	mc := &opts.mc
	if mc.draft == draftAuto {
		if m.resolve(ctx, m.httpClient(opts.insecure), mc, opts.hub, "") != nil {
			return ""
		}
	}
	return mc.tokenHint(opts.token)
}

// mercureListen holds the flags that make "ssekit listen" subscribe to a
// Mercure hub: URL is then the hub's.
type mercureListen struct {
	topics, patterns []string
	token            string
	mc               mercureClient
	cmd              string // the command, for its diagnostics
}

// addMercureListenFlags defines listen's Mercure flags on fs.
func addMercureListenFlags(fs *flag.FlagSet, ml *mercureListen, withToken bool) {
	ml.cmd = fs.Name()
	fs.Func("topic", "Mercure: subscribe to `SELECTOR` at the hub URL (repeatable): a topic, *, a URL Pattern with /:name, or a draft-07 URI template", func(s string) error {
		if s == "" {
			return errors.New("empty topic")
		}
		ml.topics = append(ml.topics, s)
		return nil
	})
	fs.Func("match-urlpattern", "Mercure draft-08: subscribe to the topics URL `PATTERN` matches (repeatable)", func(s string) error {
		if s == "" {
			return errors.New("empty pattern")
		}
		ml.patterns = append(ml.patterns, s)
		return nil
	})
	if withToken {
		fs.StringVar(&ml.token, "token", "", "Mercure: subscriber `JWT` for private updates (sent as Authorization: Bearer)")
	}
	addDraftFlag(fs, &ml.mc)
	addMintFlags(fs, &ml.mc, "the subscription")
}

// apply turns spec, whose URL is a hub's, into the subscription the
// Mercure flags ask for, in the hub's draft. It does nothing without
// --topic or --match-urlpattern (listen's generic mode).
func (ml *mercureListen) apply(ctx context.Context, m *Main, fs *flag.FlagSet, spec *debugger.RequestSpec) error {
	if ml.topics == nil && ml.patterns == nil {
		for _, name := range []string{"token", "draft", "jwt-key", "jwt-alg", "issuer", "audience"} {
			if isSet(fs, name) {
				return usageErrorf("--%s is for a Mercure subscription: give --topic", name)
			}
		}
		return nil
	}
	m.mintEnv(fs, &ml.mc)
	mc := &ml.mc
	if ml.token != "" && mc.key != "" {
		return usageErrorf("--token and --jwt-key exclude each other")
	}
	if mc.draft == draft07 && ml.patterns != nil {
		return usageErrorf("--match-urlpattern is draft-08, not --draft 07")
	}
	if err := m.resolve(ctx, m.httpClient(spec.Insecure), mc, spec.URL, ml.token); err != nil {
		return err
	}
	token := ml.token
	if mc.key != "" {
		// Valid for a day: listen reconnects with it as long as it runs.
		tok, note, err := mc.mint(spec.URL, false, true, m.now().Add(24*time.Hour))
		if err != nil {
			return err
		}
		if note != "" {
			m.logf(ml.cmd, "%s", note)
		}
		token = tok
	}
	if token != "" {
		spec.Headers = append(spec.Headers, debugger.Header{Name: "Authorization", Value: "Bearer " + token})
	}
	u, err := url.Parse(spec.URL)
	if err != nil {
		return usageErrorf("%v", err)
	}
	q := u.Query()
	for k, vs := range subscribeParams(mc.draft, ml.topics, ml.patterns, spec.LastEventID, spec.LastEventID != "") {
		q[k] = append(q[k], vs...)
	}
	u.RawQuery = q.Encode()
	spec.URL = u.String()
	m.logf(ml.cmd, "Mercure draft-%s hub (%s): %s", mc.draft, mc.via, u.RawQuery)
	return nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
