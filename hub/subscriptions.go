package hub

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"slices"
	"time"
)

// SubscriptionsPath is the prefix of Mercure subscription topics and of the
// subscriptions API.
const SubscriptionsPath = "/.well-known/mercure/subscriptions"

// SubscriptionInfo describes one active subscription (a subscriber and one
// of its selectors), as the Mercure subscriptions API and subscription
// updates show it. It marshals to Mercure's JSON-LD fields.
type SubscriptionInfo struct {
	// ID is SubscriptionsPath + "/" + the escaped topic + "/" + the escaped
	// subscriber id: the subscription's topic and address.
	ID string `json:"id"`
	// Type is always "Subscription".
	Type       string `json:"type"`
	Subscriber string `json:"subscriber"`
	Topic      string `json:"topic"`
	Active     bool   `json:"active"`
	// Payload is the subscriber's Claims.Payload, if any.
	Payload json.RawMessage `json:"payload,omitempty"`
	// RemoteAddr is SubscribeRequest.RemoteAddr; not part of the JSON.
	RemoteAddr string `json:"-"`
}

// SubscriptionID returns the id (and topic) of the subscription of
// subscriber to topic: SubscriptionsPath/{topic}/{subscriber}, both
// query-escaped as Mercure does.
func SubscriptionID(topic, subscriber string) string {
	return SubscriptionsPath + "/" + url.QueryEscape(topic) + "/" + url.QueryEscape(subscriber)
}

func (s *Subscriber) infos(active bool) []SubscriptionInfo {
	out := make([]SubscriptionInfo, len(s.topics))
	for i, t := range s.topics {
		out[i] = SubscriptionInfo{
			ID:         SubscriptionID(t, s.id),
			Type:       "Subscription",
			Subscriber: s.id,
			Topic:      t,
			Active:     active,
			RemoteAddr: s.remoteAddr,
		}
		if s.token != nil && json.Valid(s.token.Payload) {
			out[i].Payload = s.token.Payload
		}
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
		return cmp.Or(cmp.Compare(a.Subscriber, b.Subscriber), cmp.Compare(a.Topic, b.Topic))
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
		data, err := json.Marshal(subscriptionEvent{Context: "https://mercure.rocks/", SubscriptionInfo: info})
		if err == nil {
			err = h.publishLive(ctx, &Update{Topics: []string{info.ID}, Private: true, Data: string(data), Time: time.Now()})
		}
		if err != nil {
			h.log.Warn("hub: subscription update not published", "subscriber", s.id, "topic", info.Topic, "err", err)
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

// newUUIDURN returns "urn:uuid:" and a random (version 4) UUID, in one
// allocation.
func newUUIDURN() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUIDURN(&b)
}
