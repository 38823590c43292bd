package server

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/ssekit/sse/hub"
)

// subscriptionsList is the JSON-LD document of the subscriptions API.
type subscriptionsList struct {
	Context       string                 `json:"@context"`
	ID            string                 `json:"id"`
	Type          string                 `json:"type"`
	LastEventID   string                 `json:"lastEventID"`
	Subscriptions []hub.SubscriptionInfo `json:"subscriptions"`
}

// subscriptions serves GET /.well-known/mercure/subscriptions[/{topic}[/{subscriber}]]:
// the active subscriptions, filtered by topic and subscriber, for a bearer
// whose subscribe selectors match the requested URL.
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
	topic, subscriber := r.PathValue("topic"), r.PathValue("subscriber")
	self := hub.SubscriptionsPath
	switch {
	case subscriber != "":
		self = hub.SubscriptionID(topic, subscriber)
	case topic != "":
		self += "/" + url.QueryEscape(topic)
	}
	if !s.matchAny(claims.Subscribe, self) {
		s.fail(w, r, insufficientScope("token may not read "+self))
		return
	}
	list := subscriptionsList{
		Context:       "https://mercure.rocks/",
		ID:            self,
		Type:          "Subscriptions",
		LastEventID:   s.hub.LastEventID(),
		Subscriptions: []hub.SubscriptionInfo{},
	}
	for _, info := range s.hub.Subscriptions() {
		if (topic == "" || info.Topic == topic) && (subscriber == "" || info.Subscriber == subscriber) {
			list.Subscriptions = append(list.Subscriptions, info)
		}
	}
	if subscriber != "" {
		if len(list.Subscriptions) == 0 {
			s.fail(w, r, errorf(http.StatusNotFound, "no such active subscription"))
			return
		}
		w.Header().Set("Content-Type", "application/ld+json")
		info := list.Subscriptions[0]
		json.NewEncoder(w).Encode(struct {
			Context string `json:"@context"`
			hub.SubscriptionInfo
			LastEventID string `json:"lastEventID"`
		}{list.Context, info, list.LastEventID})
		return
	}
	w.Header().Set("Content-Type", "application/ld+json")
	json.NewEncoder(w).Encode(list)
}
