package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/ssekit/sse/hub"
)

// DefaultCookieName is the cookie draft-08 recommends for a subscriber's
// token (Config.CookieName).
const DefaultCookieName = "__Secure-mercure_access_token"

// metadataPath is where the hub's RFC 9728 protected-resource metadata is:
// /.well-known/oauth-protected-resource followed by the hub URL's path.
const metadataPath = "/.well-known/oauth-protected-resource" + hub.Path

// mercureDetailType is the type of Mercure authorization details.
const mercureDetailType = "https://mercure.rocks/authorization-detail"

// resourceMetadata is the RFC 9728 document, with draft-08's members.
type resourceMetadata struct {
	Resource                     string   `json:"resource"`
	AuthorizationServers         []string `json:"authorization_servers,omitempty"`
	BearerMethodsSupported       []string `json:"bearer_methods_supported"`
	AuthorizationDetailsTypes    []string `json:"authorization_details_types_supported"`
	MercureCookie                string   `json:"mercure_cookie,omitempty"`
	MercureSubscriptions         bool     `json:"mercure_subscriptions,omitempty"`
	MercureMatcherTypesSupported []string `json:"mercure_matcher_types_supported"`
}

// protectedResource serves the protected-resource metadata: what a client
// needs to get a token for this hub (its resource identifier, the
// authorization servers, how to present the token). Only the header is a
// bearer method of RFC 6750: the cookie is named apart, the query
// parameter (draft-07 only) never.
func (s *Server) protectedResource(w http.ResponseWriter, r *http.Request) {
	doc := resourceMetadata{
		Resource:                     s.resource(r),
		AuthorizationServers:         s.cfg.AuthorizationServers,
		BearerMethodsSupported:       []string{"header"},
		AuthorizationDetailsTypes:    []string{mercureDetailType},
		MercureCookie:                s.cfg.CookieName,
		MercureSubscriptions:         s.cfg.Subscriptions,
		MercureMatcherTypesSupported: []string{"exact", "urlpattern"},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	if s.cfg.Resource == "" && s.cfg.HubURL == "" {
		w.Header().Set("Vary", "Host") // the resource is the request's own hub URL
	}
	json.NewEncoder(w).Encode(doc)
}

// resource is the hub's resource identifier: Config.Resource, else the
// hub URL.
func (s *Server) resource(r *http.Request) string {
	if s.cfg.Resource != "" {
		return s.cfg.Resource
	}
	return s.hubURL(r)
}

// metadataURL is the absolute URL of the metadata document, on the hub
// URL's origin.
func (s *Server) metadataURL(r *http.Request) string {
	u, err := url.Parse(s.hubURL(r))
	if err != nil {
		return metadataPath
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: metadataPath}).String()
}

// withResourceMetadata adds resource_metadata to a Bearer challenge, so
// a client refused for its token finds where to get one.
func withResourceMetadata(challenge, metadata string) string {
	param := `resource_metadata="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(metadata) + `"`
	if challenge == challengeBare {
		return challengeBare + " " + param
	}
	return challenge + ", " + param
}

// discoveryLink is the Link header value that advertises the hub on every
// answer: Config.HubURL (hubURL) when set, else the hub's path on this origin.
func discoveryLink(hubURL string) string {
	if hubURL != "" {
		return "<" + hubURL + `>; rel="mercure"`
	}
	return "<" + hub.Path + `>; rel="mercure"`
}

// validCookieName reports whether name is an RFC 6265 cookie name (an
// RFC 7230 token).
func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}
