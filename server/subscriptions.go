package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/ssekit/sse/hub"
)

// subscriptionsList is the draft-07 JSON-LD document of the subscriptions
// API.
type subscriptionsList struct {
	Context       string                 `json:"@context"`
	ID            string                 `json:"id"`
	Type          string                 `json:"type"`
	LastEventID   string                 `json:"lastEventID"`
	Subscriptions []hub.SubscriptionInfo `json:"subscriptions"`
}

// subscriptionsList08 is the draft-08 document: plain JSON, the cursor in
// the Link header.
type subscriptionsList08 struct {
	ID            string                 `json:"id"`
	Type          string                 `json:"type"`
	Subscriptions []hub.SubscriptionInfo `json:"subscriptions"`
}

// The draft-08 matcher types, the first segment of its API paths.
var matcherTypes = map[string]bool{"exact": true, "urlpattern": true}

// subscriptionsQuery is what one subscriptions API request asks for.
type subscriptionsQuery struct {
	draft08                      bool // a draft-08 path: /{match_type}/{match}[/{subscriber}]
	topic, matchType, match, sub string
}

func (q *subscriptionsQuery) wants(info *hub.SubscriptionInfo) bool {
	if q.sub != "" && info.Subscriber != q.sub {
		return false
	}
	if q.draft08 {
		return info.MatchType == q.matchType && info.Match == q.match
	}
	return q.topic == "" || (!info.Draft08() && info.Topic == q.topic)
}

// subscriptions serves GET /.well-known/mercure/subscriptions and below:
// draft-07's /{topic}[/{subscriber}] and draft-08's
// /{match_type}/{match}[/{subscriber}] (two segments are draft-08's when
// the first is a matcher type). The token needs a subscribe grant for the
// path: a draft-07 token's selectors match the draft-07 URL, an access
// token's details the request's path as sent. The answer is in draft-08's
// shape (application/json, the cursor in the Link header) for an access
// token or a draft-08 path, else in draft-07's (JSON-LD, lastEventID).
func (s *Server) subscriptions(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.Subscriptions {
		s.fail(w, r, errorf(http.StatusNotFound, "the subscriptions API is not enabled on this hub"))
		return
	}
	token, src, err := s.requestToken(r, true)
	if err == nil && token == "" {
		err = tokenRequired("the subscriptions API needs a subscriber token")
	}
	if err == nil {
		err = s.checkCookieOrigin(r, src)
	}
	var claims *hub.Claims
	if err == nil {
		claims, err = s.verify(token, false)
	}
	if err == nil {
		err = checkTokenSource(claims, src)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	a, b, c := r.PathValue("a"), r.PathValue("b"), r.PathValue("c")
	q := subscriptionsQuery{}
	switch {
	case c != "" || (b != "" && matcherTypes[a]):
		q = subscriptionsQuery{draft08: true, matchType: a, match: b, sub: c}
	default:
		q = subscriptionsQuery{topic: a, sub: b}
	}
	self := r.URL.EscapedPath()
	granted := false
	if !claims.AccessToken && !q.draft08 {
		self07 := hub.SubscriptionsPath
		switch {
		case q.sub != "":
			self07 = hub.SubscriptionID(q.topic, q.sub)
		case q.topic != "":
			self07 += "/" + url.QueryEscape(q.topic)
		}
		granted = s.matchAny(claims.Subscribe, self07)
		self = self07
	} else {
		granted = s.maySubscribe(claims, self)
	}
	if !granted {
		s.fail(w, r, insufficientScope("token may not read "+self))
		return
	}
	last := s.hub.LastEventID()
	if last == "" {
		last = hub.EarliestID
	}
	w.Header().Set("Link", "<"+s.hubURL(r)+`>; rel="mercure"; last-event-id=`+quoteParam(last)+`; type="mercure"; content-type="application/json"`)
	var found []hub.SubscriptionInfo
	for _, info := range s.hub.Subscriptions() {
		if q.wants(&info) {
			found = append(found, info)
		}
	}
	if q.sub != "" && len(found) == 0 {
		s.fail(w, r, errorf(http.StatusNotFound, "no such active subscription"))
		return
	}
	if claims.AccessToken || q.draft08 {
		w.Header().Set("Content-Type", "application/json")
		if q.sub != "" {
			json.NewEncoder(w).Encode(found[0])
			return
		}
		json.NewEncoder(w).Encode(subscriptionsList08{ID: self, Type: "subscriptions", Subscriptions: append([]hub.SubscriptionInfo{}, found...)})
		return
	}
	w.Header().Set("Content-Type", "application/ld+json")
	if q.sub != "" {
		json.NewEncoder(w).Encode(struct {
			Context string `json:"@context"`
			hub.SubscriptionInfo
			LastEventID string `json:"lastEventID"`
		}{"https://mercure.rocks/", found[0], s.hub.LastEventID()})
		return
	}
	json.NewEncoder(w).Encode(subscriptionsList{
		Context: "https://mercure.rocks/", ID: self, Type: "Subscriptions",
		LastEventID: s.hub.LastEventID(), Subscriptions: append([]hub.SubscriptionInfo{}, found...),
	})
}

// quoteParam returns v as an HTTP quoted-string.
func quoteParam(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
