package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/ssekit/sse/hub"
)

// Admin routes of a running hub's outbox (AdminHandler).
const (
	// AdminPath lists the endpoints' queued and dead events (GET).
	AdminPath = "/.well-known/ssekit/webhooks"
	// ReplayPath replays an endpoint's dead letters (POST
	// ?endpoint=NAME).
	ReplayPath = AdminPath + "/replay"
	// AdminClaim is what a publisher token must grant, literally, to use
	// the admin routes: in a draft-07 token's mercure.publish, or as an
	// exact topic of an access token's publish authorization detail. A
	// wildcard ("*", a template, a pattern) does not grant it, so a
	// publisher is not an operator by accident.
	AdminClaim = "urn:ssekit:webhooks-admin"
	// MaxReplay is the most dead letters one replay request moves (in one
	// transaction, so the outbox is never held long); the answer says
	// how many are left, for the next request.
	MaxReplay = 10_000
)

// AdminHandler serves AdminPath and ReplayPath for o, to requests whose
// Authorization header carries a publisher token (verified by auth) that
// grants AdminClaim; the token is read from the header only (never a
// cookie, so no other site's page can replay). Answers: 401 without a
// valid token, 403 without the claim, 404 for an unknown endpoint, 405
// for another method. next serves every other path.
func AdminHandler(o *Outbox, auth hub.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != AdminPath && r.URL.Path != ReplayPath {
			next.ServeHTTP(w, r)
			return
		}
		if !o.authorized(w, r, auth) {
			return
		}
		switch {
		case r.URL.Path == AdminPath && r.Method == http.MethodGet:
			type queue struct {
				Name   string `json:"name"`
				Queued int    `json:"queued"`
				Dead   int    `json:"dead"`
			}
			out := struct {
				Endpoints []queue `json:"endpoints"`
			}{Endpoints: []queue{}}
			for _, d := range o.eps {
				q, dead, err := o.Counts(d.ep.Name)
				if err != nil {
					adminError(w, http.StatusInternalServerError, err.Error())
					return
				}
				out.Endpoints = append(out.Endpoints, queue{d.ep.Name, q, dead})
			}
			writeJSON(w, out)
		case r.URL.Path == ReplayPath && r.Method == http.MethodPost:
			name := r.URL.Query().Get("endpoint")
			if name == "" {
				adminError(w, http.StatusBadRequest, "endpoint=NAME is required")
				return
			}
			n, left, err := o.ReplayN(name, MaxReplay)
			switch {
			case errors.Is(err, ErrNoEndpoint):
				adminError(w, http.StatusNotFound, "no webhook endpoint named "+name)
				return
			case err != nil:
				adminError(w, http.StatusInternalServerError, err.Error())
				return
			}
			o.log.Info("webhook: dead letters replayed", "endpoint", name, "replayed", n, "left", left)
			writeJSON(w, map[string]int{"replayed": n, "dead": left})
		default:
			allow := http.MethodGet
			if r.URL.Path == ReplayPath {
				allow = http.MethodPost
			}
			w.Header().Set("Allow", allow)
			adminError(w, http.StatusMethodNotAllowed, "use "+allow)
		}
	})
}

// authorized checks the request's token, answering the refusal itself.
func (o *Outbox) authorized(w http.ResponseWriter, r *http.Request, auth hub.Authenticator) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" || auth == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ssekit webhooks"`)
		adminError(w, http.StatusUnauthorized, "a publisher token in the Authorization header (Bearer) is required")
		return false
	}
	claims, err := auth.VerifyPublisher(tok)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ssekit webhooks", error="invalid_token"`)
		adminError(w, http.StatusUnauthorized, "invalid token")
		return false
	}
	if !grantsAdmin(claims) {
		adminError(w, http.StatusForbidden, "the token does not grant "+AdminClaim)
		return false
	}
	return true
}

// grantsAdmin reports whether claims name AdminClaim literally.
func grantsAdmin(c *hub.Claims) bool {
	if !c.AccessToken {
		return slices.Contains(c.Publish, AdminClaim)
	}
	for _, d := range c.Details {
		if d.Publish && slices.ContainsFunc(d.Topics, func(m hub.TokenMatcher) bool {
			return m.Match == AdminClaim && (m.Type == "" || m.Type == "exact")
		}) {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}
