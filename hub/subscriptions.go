package hub

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SubscriptionsPath is the prefix of Mercure subscription topics and of the
// subscriptions API.
const SubscriptionsPath = "/.well-known/mercure/subscriptions"

// SubscriptionInfo describes one active subscription (a subscriber and one
// of its selectors), as the Mercure subscriptions API and subscription
// updates show it: in draft-07's shape for a topic= selector (Type
// "Subscription", Topic; JSON-LD), in draft-08's for a matcher (Type
// "subscription", MatchType, Match; plain JSON).
type SubscriptionInfo struct {
	// ID is the subscription's topic and address: draft-07
	// SubscriptionID, draft-08 SubscriptionID08.
	ID string `json:"id"`
	// Type is "Subscription" (draft-07) or "subscription" (draft-08).
	Type       string `json:"type"`
	Subscriber string `json:"subscriber"`
	// Topic is a draft-07 subscription's selector.
	Topic string `json:"topic,omitempty"`
	// MatchType and Match are a draft-08 subscription's matcher.
	MatchType string `json:"match_type,omitempty"`
	Match     string `json:"match,omitempty"`
	Active    bool   `json:"active"`
	// Payload is the draft-07 token's Claims.Payload, or for a draft-08
	// subscription SubscribeRequest.MatcherPayloads', if any.
	Payload json.RawMessage `json:"payload,omitempty"`
	// RemoteAddr is SubscribeRequest.RemoteAddr; not part of the JSON.
	RemoteAddr string `json:"-"`
}

// Draft08 reports whether info is a draft-08 (matcher) subscription.
func (info *SubscriptionInfo) Draft08() bool { return info.MatchType != "" }

// SubscriptionID returns the id (and topic) of the draft-07 subscription
// of subscriber to topic: SubscriptionsPath/{topic}/{subscriber}, both
// query-escaped as Mercure does.
func SubscriptionID(topic, subscriber string) string {
	return SubscriptionsPath + "/" + url.QueryEscape(topic) + "/" + url.QueryEscape(subscriber)
}

// SubscriptionID08 returns the id (and topic) of the draft-08
// subscription of subscriber with a matcher:
// SubscriptionsPath/{match_type}/{match}/{subscriber}, each percent-encoded
// once as an RFC 6570 simple expansion (all but unreserved characters).
func SubscriptionID08(matchType, match, subscriber string) string {
	return SubscriptionsPath + "/" + EscapeUnreserved(matchType) + "/" + EscapeUnreserved(match) + "/" + EscapeUnreserved(subscriber)
}

// EscapeUnreserved percent-encodes every byte of s but the unreserved
// characters (ALPHA, DIGIT, "-", ".", "_", "~"), as RFC 6570 expands {var}.
func EscapeUnreserved(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+16), s[:i]...)
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	if b == nil {
		return s
	}
	return string(b)
}

// matcherType names a draft-08 matcher's type: "exact" for an exact
// selector or "*", else the type its MatcherSelector key starts with
// (the text before its first NUL, "urlpattern").
func matcherType(sel *Selector) string {
	if sel.ext == nil {
		return "exact"
	}
	key := strings.TrimPrefix(sel.raw, "\x00")
	if i := strings.IndexByte(key, 0); i > 0 {
		return key[:i]
	}
	return "exact"
}

func (s *Subscriber) infos(active bool) []SubscriptionInfo {
	out := make([]SubscriptionInfo, len(s.topics))
	id := s.ID()
	var payloads []json.RawMessage
	if s.payloads != nil {
		payloads = *s.payloads
	}
	for i, t := range s.topics {
		info := SubscriptionInfo{Subscriber: id, Active: active, RemoteAddr: s.remoteAddr}
		if i < int(s.legacy) {
			info.ID, info.Type, info.Topic = SubscriptionID(t, id), "Subscription", t
			if s.token != nil && json.Valid(s.token.Payload) {
				info.Payload = s.token.Payload
			}
		} else {
			info.MatchType, info.Match, info.Type = matcherType(s.sels[i]), t, "subscription"
			info.ID = SubscriptionID08(info.MatchType, t, id)
			if j := i - int(s.legacy); j < len(payloads) && json.Valid(payloads[j]) {
				info.Payload = payloads[j]
			}
		}
		out[i] = info
	}
	return out
}

// Subscriptions lists the active subscriptions, one per subscriber and
// selector, ordered by subscriber then topic.
func (h *Hub) Subscriptions() []SubscriptionInfo {
	h.mu.RLock()
	var out []SubscriptionInfo
	for s := range h.subs {
		out = append(out, s.infos(true)...)
	}
	h.mu.RUnlock()
	slices.SortFunc(out, func(a, b SubscriptionInfo) int {
		return cmp.Or(cmp.Compare(a.Subscriber, b.Subscriber), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// subscriptionEvent is the JSON-LD of a subscription update.
type subscriptionEvent struct {
	Context string `json:"@context"`
	SubscriptionInfo
}

// publishEvents sends one private subscription update per selector of s
// to the subscribers live: they are never stored, so however many
// selectors a subscriber names, and however long (Subscribe refuses them
// over MaxTopicLength), its connections and departures cannot push real
// updates out of the history nor grow it. They carry no id, so a client's
// Last-Event-ID stays that of the last real update, which it can resume
// from. In a cluster each node tells its own subscribers of its own
// subscriptions. Failures are logged: they must not fail the subscription
// itself.
func (h *Hub) publishEvents(ctx context.Context, s *Subscriber, active bool) {
	for _, info := range s.infos(active) {
		// Each in its draft's shape: draft-07 JSON-LD as a message, so
		// onmessage consumers see it; draft-08 plain JSON as the reserved
		// "mercure" event type.
		var data []byte
		var err error
		u := &Update{Topics: []string{info.ID}, Private: true, Time: time.Now()}
		if info.Draft08() {
			data, err = json.Marshal(info)
			u.Type = "mercure"
		} else {
			data, err = json.Marshal(subscriptionEvent{Context: "https://mercure.rocks/", SubscriptionInfo: info})
		}
		if err == nil {
			u.Data = string(data)
			err = h.publishLive(ctx, u)
		}
		if err != nil {
			h.log.Warn("hub: subscription update not published", "subscriber", s.ID(), "topic", info.Topic, "err", err)
		}
	}
}

// publishLive hands u, a live-only update (Seq 0), to the fan-out, waiting
// while the fan-out is behind.
func (h *Hub) publishLive(ctx context.Context, u *Update) error {
	select {
	case h.liveQueue <- u:
		return nil
	case <-h.fanDone:
		return ErrHubClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publishEventsAsync publishes s's subscription updates from a goroutine:
// it is called where publishing could deadlock (the fan-out) or block a
// caller that has no context. Shutdown waits for it.
func (h *Hub) publishEventsAsync(s *Subscriber, active bool) {
	if !h.subEvents {
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return
	}
	h.events.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.publishEvents(ctx, s, active)
	})
}

// newUUID returns a random (version 4) UUID; formatUUIDURN makes it a
// "urn:uuid:" string.
func newUUID() [16]byte {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}
