package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/matcher/urlpattern"
)

// methodQuery is the safe method with a body (RFC 10008) that draft-08
// subscribers may use instead of GET, with the parameters in a form body.
const methodQuery = "QUERY"

// The draft-08 subscription parameters. Every other name starting with
// "match" (ASCII case-insensitively) is reserved and answered 400, so a
// typo fails loudly; topic= stays the draft-07 template selector and is
// never reachable under a match* name.
const (
	paramMatch           = "match"            // exact, the default type
	paramMatchExact      = "match_exact"      // exact, spelled out
	paramMatchURLPattern = "match_urlpattern" // WHATWG URL Pattern
	paramTopic           = "topic"            // draft-07: "*", exact, RFC 6570 template
	paramLastEventID     = "last_event_id"    // draft-08
	paramLastEventID07   = "lastEventID"      // draft-07
)

// reservedEventType is the SSE event type draft-08 keeps for the hub's
// own events (subscription events); publishers may not use it.
const reservedEventType = "mercure"

// subscribeParams is what a subscription request asks for, from its query
// string and, for QUERY, its form body (their union).
type subscribeParams struct {
	selectors   []string        // topic=, compiled by the hub
	matchers    []*hub.Selector // match, match_exact, match_urlpattern
	lastEventID string
	// cursorAsked: the request named a cursor, even an empty one (the
	// header, last_event_id or lastEventID), so the response names where
	// the stream resumed (Mercure-Last-Event-ID).
	cursorAsked bool
}

// formPair is one name/value pair of a form.
type formPair struct{ name, value string }

// parseForm splits s as the WHATWG application/x-www-form-urlencoded
// parser does (URLSearchParams): "&" separates pairs, ";" is data, "+" is
// a space, a bare name has an empty value, and a "%" not followed by two
// hex digits is kept as it is. Its cost is linear in len(s).
func parseForm(s string) []formPair {
	var pairs []formPair
	for rest := s; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		pairs = append(pairs, formPair{formUnescape(name), formUnescape(value)})
	}
	return pairs
}

func formUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// maxSubscribeFormPairs bounds the pairs of one subscription request
// besides its matchers (last_event_id, authorization, a client's own).
const maxSubscribeFormPairs = 32

// subscribeParams reads a subscription's parameters: the query string and,
// for QUERY, the form body (bounded by MaxBodyBytes), as one set of pairs.
// last_event_id of the query wins over the body's; the Last-Event-ID
// header over both, then lastEventID (draft-07).
func (s *Server) subscribeParams(w http.ResponseWriter, r *http.Request) (*subscribeParams, error) {
	maxPairs := s.cfg.MaxTopics + maxSubscribeFormPairs
	if strings.Count(r.URL.RawQuery, "&") >= maxPairs {
		return nil, errorf(http.StatusBadRequest, "too many query parameters (max "+strconv.Itoa(maxPairs)+")")
	}
	query := parseForm(r.URL.RawQuery)
	var body []formPair
	if r.Method == methodQuery {
		raw, err := s.readFormBody(w, r)
		if err != nil {
			return nil, err
		}
		if strings.Count(raw, "&") >= maxPairs {
			return nil, errorf(http.StatusBadRequest, "too many form fields (max "+strconv.Itoa(maxPairs)+")")
		}
		body = parseForm(raw)
	}
	p := &subscribeParams{}
	base := ""
	var lastQuery, lastBody, last07 string
	var hasLastQuery, hasLastBody, hasLast07 bool
	for i, pair := range append(query, body...) {
		fromQuery := i < len(query)
		name, value := pair.name, pair.value
		switch {
		case name == paramTopic:
			if value == "" {
				return nil, errorf(http.StatusBadRequest, "empty topic selector")
			}
			p.selectors = append(p.selectors, value)
		case reservedMatchName(name):
			if err := checkMatcherValue(name, value); err != nil {
				return nil, err
			}
			if len(p.selectors)+len(p.matchers) >= s.cfg.MaxTopics { // before compiling one more
				return nil, errorf(http.StatusBadRequest, "too many topics (max "+strconv.Itoa(s.cfg.MaxTopics)+" topic and match* parameters)")
			}
			if base == "" && name == paramMatchURLPattern {
				base = s.hubURL(r)
			}
			m, err := s.compileMatcher(name, value, base)
			if err != nil {
				return nil, err
			}
			p.matchers = append(p.matchers, m)
		case name == paramLastEventID && fromQuery && !hasLastQuery:
			lastQuery, hasLastQuery = value, true
		case name == paramLastEventID && !fromQuery && !hasLastBody:
			lastBody, hasLastBody = value, true
		case name == paramLastEventID07 && fromQuery && !hasLast07:
			last07, hasLast07 = value, true
		}
	}
	if len(p.selectors)+len(p.matchers) == 0 {
		return nil, errorf(http.StatusBadRequest, `missing topic: subscribe with ?match=<topic>, ?match_urlpattern=<pattern> or ?topic=<selector>`)
	}
	if n := len(p.selectors) + len(p.matchers); n > s.cfg.MaxTopics {
		return nil, errorf(http.StatusBadRequest, "too many topics ("+strconv.Itoa(n)+"; max "+strconv.Itoa(s.cfg.MaxTopics)+")")
	}
	_, hasHeader := r.Header["Last-Event-Id"]
	p.cursorAsked = hasHeader || hasLastQuery || hasLastBody || hasLast07
	switch {
	case r.Header.Get("Last-Event-ID") != "":
		p.lastEventID = r.Header.Get("Last-Event-ID")
	case lastQuery != "":
		p.lastEventID = lastQuery
	case lastBody != "":
		p.lastEventID = lastBody
	default:
		p.lastEventID = last07
	}
	return p, nil
}

// reservedMatchName reports whether name is in draft-08's reserved
// namespace: "match" or anything starting with it, ASCII
// case-insensitively.
func reservedMatchName(name string) bool {
	return len(name) >= len(paramMatch) && strings.EqualFold(name[:len(paramMatch)], paramMatch)
}

// checkMatcherValue refuses an unknown reserved name and a value that is
// empty, too long, not UTF-8 or holds control or format characters.
func checkMatcherValue(name, value string) error {
	switch name {
	case paramMatch, paramMatchExact, paramMatchURLPattern:
	default:
		return errorf(http.StatusBadRequest, "unknown matcher parameter "+strconv.Quote(truncateQuote(name))+" (supported: match, match_exact, match_urlpattern)")
	}
	if value == "" {
		return errorf(http.StatusBadRequest, "empty "+name)
	}
	if len(value) > hub.MaxSelectorLength {
		return errorf(http.StatusBadRequest, name+" too long ("+strconv.Itoa(len(value))+" bytes; max "+strconv.Itoa(hub.MaxSelectorLength)+")")
	}
	if err := checkTopicText(value); err != nil {
		return errorf(http.StatusBadRequest, name+" "+err.Error())
	}
	return nil
}

// checkTopicText is draft-08's rule for every topic string: valid UTF-8
// without C0, DEL, C1 or Unicode format (Cf) characters.
func checkTopicText(v string) error {
	if !utf8.ValidString(v) {
		return errors.New("is not valid UTF-8")
	}
	for _, c := range v {
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) {
			return errors.New("contains the control or format character " + strconv.QuoteRune(c))
		}
	}
	return nil
}

// compileMatcher compiles one checked matcher parameter. "*" is the
// wildcard under every type; match and match_exact compare byte for byte,
// with no resolution; match_urlpattern resolves against base, compiled
// once for every subscriber sending it (the hub's matcher cache).
func (s *Server) compileMatcher(name, value, base string) (*hub.Selector, error) {
	if value == "*" {
		return hub.ParseSelector("*"), nil
	}
	if name != paramMatchURLPattern {
		return hub.ExactSelector(value), nil
	}
	sel, err := s.urlPattern(value, base)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid match_urlpattern: "+oneLine(err.Error()))
	}
	return sel, nil
}

// urlPattern returns pattern compiled against base, from the hub's
// matcher cache. The key tells patterns apart by base too: with HubURL
// unset, two hosts' subscribers may send the same relative pattern.
func (s *Server) urlPattern(pattern, base string) (*hub.Selector, error) {
	return s.hub.CachedMatcher("urlpattern\x00"+base+"\x00"+pattern, func() (hub.Matcher, error) {
		return urlpattern.New(pattern, base)
	})
}

// mayPublish reports whether claims grant publishing to topic: a draft-07
// token by its mercure.publish selectors, an access token by a publish
// authorization detail with a matcher matching topic.
func (s *Server) mayPublish(claims *hub.Claims, topic string) bool {
	if !claims.AccessToken {
		return s.matchAny(claims.Publish, topic)
	}
	for _, d := range claims.Details {
		if d.Publish && slices.ContainsFunc(d.Topics, func(m hub.TokenMatcher) bool { return s.grantMatches(m, topic) }) {
			return true
		}
	}
	return false
}

// subscribeGrants compiles an access token's subscribe grants for the
// hub (private updates and replay), resolved as grantMatches resolves
// them; nil for a draft-07 token, whose Claims.Subscribe the hub compiles.
// A grant that cannot be compiled (a relative pattern without HubURL) is
// left out: it matches nothing.
func (s *Server) subscribeGrants(claims *hub.Claims) []*hub.Selector {
	if claims == nil || !claims.AccessToken {
		return nil
	}
	grants := []*hub.Selector{}
	for _, d := range claims.Details {
		if !d.Subscribe {
			continue
		}
		for _, m := range d.Topics {
			switch {
			case m.Match == "*":
				grants = append(grants, hub.ParseSelector("*"))
			case m.Type == "urlpattern":
				if sel, err := s.urlPattern(m.Match, s.cfg.HubURL); err == nil {
					grants = append(grants, sel)
				}
			default:
				grants = append(grants, hub.ExactSelector(m.Match))
			}
		}
	}
	return grants
}

// grantMatches reports whether an access token's matcher matches topic:
// "*" every topic, "exact" the equal one, "urlpattern" those its pattern
// matches resolved against Config.HubURL. Never against the request's own
// URL: a publisher chooses its Host header, and a relative grant would
// then reach topics of any host. So without HubURL a relative pattern in a
// grant matches nothing (jwtauth has already refused patterns that do not
// compile; one that still fails here matches nothing either).
func (s *Server) grantMatches(m hub.TokenMatcher, topic string) bool {
	switch {
	case m.Match == "*":
		return true
	case m.Type == "urlpattern":
		sel, err := s.urlPattern(m.Match, s.cfg.HubURL)
		return err == nil && sel.Match(topic)
	default:
		return m.Match == topic
	}
}

// hubURL is the URL patterns and topics are resolved against:
// Config.HubURL, or the request's own hub URL.
func (s *Server) hubURL(r *http.Request) string {
	if s.cfg.HubURL != "" {
		return s.cfg.HubURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: r.Host, Path: hub.Path}).String()
}

// checkHubURL refuses a Config.HubURL that is not an absolute http(s) URL
// of the path the hub serves (hub.Path), without query or fragment: the
// reserved namespace, subscription topics and the metadata's location all
// derive from its path, and the hub serves only that one.
func checkHubURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return errors.New("server: HubURL must be an absolute http or https URL, got " + strconv.Quote(v))
	}
	if u.Path != hub.Path || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return errors.New("server: HubURL must end with the hub's path " + hub.Path + " and have no query, got " + strconv.Quote(v))
	}
	return nil
}

func truncateQuote(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// checkPublishTopic applies draft-08's rules for a published topic, to
// every publisher: the topic text rule, no "*" (the wildcard cannot be
// addressed), and nothing in the hub's own namespace (subscription events
// are the hub's alone to publish).
func checkPublishTopic(topic string) error {
	if err := checkTopicText(topic); err != nil {
		return errorf(http.StatusBadRequest, "topic "+err.Error())
	}
	if topic == "*" {
		return errorf(http.StatusBadRequest, `topic "*" is reserved: it is the wildcard and cannot be published to`)
	}
	if inHubNamespace(topic) {
		return errorf(http.StatusBadRequest, "topic "+strconv.Quote(truncateQuote(topic))+" is in the hub's reserved namespace ("+hub.Path+")")
	}
	return nil
}

// specialSchemes are the WHATWG URL standard's special schemes, whose URLs
// have a host and a path, and in which "\" is read as "/".
var specialSchemes = map[string]bool{"http": true, "https": true, "ws": true, "wss": true, "ftp": true, "file": true}

// inHubNamespace reports whether topic, resolved as a URL reference
// against the hub URL, has a path equal to hub.Path or under it, once
// percent-escapes of unreserved characters are decoded and dot-segments
// removed. Scheme and host do not matter (a proxy may give the hub any
// name), so only the path is worked out, as the WHATWG URL parser would
// find it: a topic Go's URL parser refuses is judged all the same. The
// cost is linear in the topic's length.
func inHubNamespace(topic string) bool {
	rest, special, relative := topic, true, true
	if i := strings.IndexByte(topic, ':'); i > 0 && validScheme(topic[:i]) {
		scheme := strings.ToLower(topic[:i])
		rest, special, relative = topic[i+1:], specialSchemes[scheme], false
		if special && scheme == "http" && !strings.HasPrefix(rest, "/") && !strings.HasPrefix(rest, `\`) {
			relative = true // "http:x" against an http hub URL is relative
		}
	}
	if special {
		end := len(rest)
		if i := strings.IndexAny(rest, "?#"); i >= 0 {
			end = i
		}
		rest = strings.ReplaceAll(rest[:end], `\`, "/")
	} else if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	var p string
	switch {
	case !relative && !special:
		switch {
		case strings.HasPrefix(rest, "//"):
			p = authorityPath(rest[2:])
		case strings.HasPrefix(rest, "/"):
			p = rest // no host, a path all the same ("urn:/…")
		default:
			return false // an opaque path ("urn:…", "mailto:…") is no hub path
		}
	case !relative: // special: the slashes before the host are ignored
		p = authorityPath(strings.TrimLeft(rest, "/"))
	case strings.HasPrefix(rest, "//"):
		p = authorityPath(rest[2:])
	case strings.HasPrefix(rest, "/"):
		p = rest
	default: // relative to the hub URL's directory
		p = hub.Path[:strings.LastIndexByte(hub.Path, '/')+1] + rest
	}
	p = removeDotSegments(decodeUnreserved(p))
	return p == hub.Path || strings.HasPrefix(p, hub.Path+"/")
}

// authorityPath returns the path after an authority ("host/path" → "/path").
func authorityPath(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[i:]
	}
	return "/"
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// decodeUnreserved decodes the percent-escapes of unreserved characters
// (ALPHA, DIGIT, "-", ".", "_", "~"), which name the same path as the
// characters themselves; other escapes stay.
func decodeUnreserved(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]) {
			if c := unhex(s[i+1])<<4 | unhex(s[i+2]); isUnreserved(c) {
				b = append(b, c)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// removeDotSegments is RFC 3986 section 5.2.4 for an absolute path: "."
// segments are dropped and ".." drops the segment before it.
func removeDotSegments(p string) string {
	if !strings.Contains(p, "/.") { // a dot-segment follows a slash
		return p
	}
	segs := strings.Split(p, "/")[1:]
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// The Bearer challenges of RFC 6750 section 3, as draft-08 answers them
// (draft-07 clients only look at the status, which is unchanged).
const (
	challengeBare              = "Bearer"
	challengeInvalidToken      = `Bearer error="invalid_token"`
	challengeInsufficientScope = `Bearer error="insufficient_scope"`
	challengeInvalidRequest    = `Bearer error="invalid_request"`
)

// tokenRequired is the 401 for a request that presented no bearer token:
// a bare challenge, with no error code.
func tokenRequired(msg string) error {
	return &httpError{status: http.StatusUnauthorized, msg: msg, challenge: challengeBare}
}

// invalidToken is the 401 for every invalid token, whatever the reason,
// so the challenge tells nothing about which check failed.
func invalidToken(msg string) error {
	return &httpError{status: http.StatusUnauthorized, msg: msg, challenge: challengeInvalidToken}
}

// insufficientScope is the 403 for a valid token without the grant.
func insufficientScope(msg string) error {
	return &httpError{status: http.StatusForbidden, msg: msg, challenge: challengeInsufficientScope}
}

// invalidRequest is the 400 for a malformed token presentation.
func invalidRequest(msg string) error {
	return &httpError{status: http.StatusBadRequest, msg: msg, challenge: challengeInvalidRequest}
}

// challengeOf returns the WWW-Authenticate value err is answered with, ""
// for none. An Authenticator's ErrUnauthorized is an invalid token.
func challengeOf(err error) string {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.challenge
	case errors.Is(err, hub.ErrUnauthorized):
		return challengeInvalidToken
	}
	return ""
}

// matcherPayloads returns the payload each matcher's subscription shows
// (nil when none has one): for an access token, the payload of the first
// subscribe detail whose matchers match the subscription's own matcher
// string taken as a topic (so a "*" detail is a default); for a draft-07
// token, its mercure.payload for every subscription.
func (s *Server) matcherPayloads(claims *hub.Claims, matchers []*hub.Selector) []json.RawMessage {
	if claims == nil || len(matchers) == 0 {
		return nil
	}
	var out []json.RawMessage
	for i, m := range matchers {
		p := claims.Payload
		if claims.AccessToken {
			p = s.detailPayload(claims, m.String())
		}
		if p == nil {
			continue
		}
		if out == nil {
			out = make([]json.RawMessage, len(matchers))
		}
		out[i] = p
	}
	return out
}

// detailPayload is the payload of the first subscribe detail of claims
// with a matcher matching topic, nil for none.
func (s *Server) detailPayload(claims *hub.Claims, topic string) json.RawMessage {
	for _, d := range claims.Details {
		if d.Subscribe && slices.ContainsFunc(d.Topics, func(m hub.TokenMatcher) bool { return s.grantMatches(m, topic) }) {
			return d.Payload
		}
	}
	return nil
}

// maySubscribe reports whether claims hold a subscribe grant for topic:
// a draft-07 token by its mercure.subscribe selectors, an access token by
// a subscribe detail with a matcher matching topic.
func (s *Server) maySubscribe(claims *hub.Claims, topic string) bool {
	if !claims.AccessToken {
		return s.matchAny(claims.Subscribe, topic)
	}
	for _, d := range claims.Details {
		if d.Subscribe && slices.ContainsFunc(d.Topics, func(m hub.TokenMatcher) bool { return s.grantMatches(m, topic) }) {
			return true
		}
	}
	return false
}
