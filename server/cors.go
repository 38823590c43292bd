package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// corsPolicy answers browsers' cross-origin checks for an explicit list of
// origins. Credentials (the auth cookie) are allowed only for listed
// origins, never for "*".
type corsPolicy struct {
	origins map[string]bool
	any     bool
}

func newCORSPolicy(origins []string) (corsPolicy, error) {
	p := corsPolicy{origins: make(map[string]bool)}
	for _, o := range origins {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
		case o == "*":
			p.any = true
		default:
			u, err := url.Parse(o)
			if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return p, fmt.Errorf("server: CORS origin %q must be scheme://host[:port]", o)
			}
			p.origins[strings.TrimSuffix(o, "/")] = true
		}
	}
	return p, nil
}

func (p corsPolicy) allowsCredentials(origin string) bool { return p.origins[origin] }

// apply adds the CORS response headers for an allowed Origin.
func (p corsPolicy) apply(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	switch {
	case p.origins[origin]:
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	case p.any:
		h.Set("Access-Control-Allow-Origin", "*")
	default:
		return
	}
	h.Set("Access-Control-Expose-Headers", "Last-Event-ID, Mercure-Last-Event-ID, Retry-After")
}

// preflight answers OPTIONS for allowed origins, 403 for the others.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !(s.cors.any || s.cors.origins[origin]) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, "+methodQuery)
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, Cache-Control")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// sameOrigin reports whether origin (an Origin or Referer value) is the
// hub's own.
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}
