package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ssekit/sse/hub"
)

// tokenSource says where a request's token came from: a cookie can be sent
// by a browser on another site's behalf, so it needs an allowed Origin.
type tokenSource int

const (
	noToken tokenSource = iota
	headerToken
	queryToken
	cookieToken
)

// requestToken finds the request's JWT, by precedence: the Authorization
// header (when present, cookies are ignored), then (when allowQuery)
// draft-07's authorization query parameter, then the Config.CookieName
// cookie, then draft-07's hub.AuthCookie.
func (s *Server) requestToken(r *http.Request, allowQuery bool) (string, tokenSource, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			if ok && strings.EqualFold(scheme, "Bearer") || strings.EqualFold(h, "Bearer") {
				return "", noToken, invalidRequest("Authorization header must be \"Bearer <token>\"")
			}
			return "", noToken, tokenRequired("Authorization header must be \"Bearer <token>\"")
		}
		return strings.TrimSpace(token), headerToken, nil
	}
	if allowQuery {
		if q := r.URL.Query(); q.Has("authorization") {
			if t := q.Get("authorization"); t != "" {
				return t, queryToken, nil
			}
			return "", noToken, invalidToken("empty authorization query parameter")
		}
	}
	for _, name := range [...]string{s.cfg.CookieName, hub.AuthCookie} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return c.Value, cookieToken, nil
		}
	}
	return "", noToken, nil
}

// checkTokenSource refuses a draft-08 access token that came in the
// authorization query parameter: draft-08 has no query token (a URL ends
// up in logs and Referer headers), so only draft-07 tokens may use it.
func checkTokenSource(claims *hub.Claims, src tokenSource) error {
	if src == queryToken && claims != nil && claims.AccessToken {
		return invalidToken("access tokens are not accepted in the query string: send them in the Authorization header or the cookie")
	}
	return nil
}

// verify checks a token with the configured Authenticator.
func (s *Server) verify(token string, publisher bool) (*hub.Claims, error) {
	if s.cfg.Auth == nil {
		return nil, invalidToken("this hub has no key configured to verify tokens")
	}
	var (
		claims *hub.Claims
		err    error
	)
	if publisher {
		claims, err = s.cfg.Auth.VerifyPublisher(token)
	} else {
		claims, err = s.cfg.Auth.VerifySubscriber(token)
	}
	if err != nil {
		return nil, invalidToken("invalid token: " + oneLine(err.Error()))
	}
	return claims, nil
}

// checkCookieOrigin refuses a cookie-authenticated request from an origin
// that is not allowed: otherwise any site could make a visitor's browser
// publish or subscribe with the visitor's cookie.
func (s *Server) checkCookieOrigin(r *http.Request, src tokenSource) error {
	if src != cookieToken {
		return nil
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = r.Header.Get("Referer")
	}
	if origin == "" || s.cors.allowsCredentials(origin) || sameOrigin(r, origin) {
		return nil
	}
	return errorf(http.StatusForbidden, "origin "+origin+" may not use the authorization cookie")
}

// AuthHook lets the application decide the requests that carry no token
// (package authhook asks it over HTTP). Config.SubscribeHook and
// Config.PublishHook say for which route; a request with a token is
// decided by Auth, as without a hook.
type AuthHook interface {
	// Authorize answers the claims granted (draft-07 style: Subscribe for
	// the private topics, Publish for the topics that may be published,
	// Payload for the subscriptions API), or an error: one wrapping
	// ErrHookRefused is a 403 with its message, any other is the
	// application being unavailable, a 503 with the Retry-After its
	// RetryAfter() time.Duration method says (or 5 s), failing closed.
	Authorize(ctx context.Context, req *HookRequest) (*hub.Claims, error)
}

// HookRequest is what an AuthHook decides on.
type HookRequest struct {
	// Publish: a publish; otherwise a subscribe.
	Publish bool
	// HTTP is the request, for its cookies and headers; the hook sends
	// only those its configuration names.
	HTTP *http.Request
	// Client is the client's address (after Config.TrustedProxies).
	Client string
	// Topics are the subscription's topic= selectors or the update's
	// topics; Matchers the draft-08 match* selectors, as written.
	Topics, Matchers []string
}

// ErrHookRefused is wrapped by an AuthHook's refusal.
var ErrHookRefused = errors.New("refused by the application")

// defaultHookRetryAfter is the Retry-After of an unavailable hook that
// does not say.
const defaultHookRetryAfter = 5 * time.Second

// hookClaims asks hook and maps its answer to the client's status.
func (s *Server) hookClaims(r *http.Request, hook AuthHook, req *HookRequest) (*hub.Claims, error) {
	req.HTTP, req.Client = r, clientHost(s.clientAddr(r)) // no port: one client, one cache entry
	// The application decides by the request's cookies: from another
	// site's page they would be the visitor's, sent on that site's behalf.
	if r.Header.Get("Cookie") != "" {
		if err := s.checkCookieOrigin(r, cookieToken); err != nil {
			return nil, err
		}
	}
	claims, err := hook.Authorize(r.Context(), req)
	switch {
	case err == nil && claims != nil:
		return claims, nil
	case errors.Is(err, ErrHookRefused):
		return nil, errorf(http.StatusForbidden, oneLine(err.Error()))
	case err == nil:
		return nil, errorf(http.StatusForbidden, ErrHookRefused.Error())
	}
	retry := defaultHookRetryAfter
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		retry = ra.RetryAfter()
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "auth hook unavailable", slog.Any("err", err), slog.String("remote", req.Client))
	return nil, tooBusy(http.StatusServiceUnavailable, "the application deciding this request is unavailable, retry later", retry)
}

func selectorStrings(sels []*hub.Selector) []string {
	out := make([]string, len(sels))
	for i, m := range sels {
		out[i] = m.String()
	}
	return out
}

// Authorization is how a subscriber got in.
type Authorization int

const (
	Anonymous Authorization = iota // no token, no hook
	ByToken                        // a token the keys verified
	ByHook                         // the AuthHook's grant
)

// SubscribePolicy may refuse a subscription by its selectors (topic= and
// match*, compiled) and how it was authorised (package policy).
type SubscribePolicy interface {
	// CheckSubscribe returns nil, or an error wrapping ErrPolicyRefused
	// (401 for an anonymous subscriber, 403 for the others).
	CheckSubscribe(selectors []*hub.Selector, how Authorization) error
}

// ErrPolicyRefused is wrapped by a SubscribePolicy's refusal.
var ErrPolicyRefused = errors.New("refused by a topic policy")

// latestCursor is where a subscriber without a cursor starts when it
// subscribes to latest-state topics.
func (s *Server) latestCursor(params *subscribeParams) string {
	sels := make([]*hub.Selector, 0, len(params.selectors)+len(params.matchers))
	for _, raw := range params.selectors {
		sels = append(sels, hub.ParseSelector(raw)) // linear in its length; the hub checks the limits next
	}
	return s.cfg.LatestState.Cursor(append(sels, params.matchers...))
}

// checkPolicy applies Config.SubscribePolicy.
func (s *Server) checkPolicy(r *http.Request, params *subscribeParams) error {
	if s.cfg.SubscribePolicy == nil {
		return nil
	}
	how := Anonymous
	if token, _, _ := s.requestToken(r, true); token != "" {
		how = ByToken
	} else if s.cfg.SubscribeHook != nil {
		how = ByHook
	}
	sels := make([]*hub.Selector, 0, len(params.selectors)+len(params.matchers))
	for _, raw := range params.selectors {
		sel, err := hub.CompileSelector(raw)
		if err != nil {
			return err // the hub would refuse it the same way
		}
		sels = append(sels, sel)
	}
	sels = append(sels, params.matchers...)
	err := s.cfg.SubscribePolicy.CheckSubscribe(sels, how)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, ErrPolicyRefused):
		return err
	case how == Anonymous:
		return tokenRequired(oneLine(err.Error()))
	default:
		return errorf(http.StatusForbidden, oneLine(err.Error()))
	}
}

// LatestState gives a subscriber that sent no cursor where to start so
// that it first gets the last updates of its latest-state topics (package
// policy): an update id, hub.EarliestID, or "" for live only.
type LatestState interface {
	Cursor(selectors []*hub.Selector) string
}
