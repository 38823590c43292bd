package server

import (
	"net/http"
	"strings"

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
