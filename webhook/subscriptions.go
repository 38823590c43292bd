package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
)

// subscriptionsSelector matches every subscription topic of the hub.
const subscriptionsSelector = hub.SubscriptionsPath + "/{topic}/{subscriber}"

// WantsSubscriptions reports whether an endpoint asks for subscription
// events: the hub must then have Config.SubscriptionEvents on.
func WantsSubscriptions(eps []Endpoint) bool {
	for _, ep := range eps {
		if ep.Subscriptions {
			return true
		}
	}
	return false
}

// WatchSubscriptions queues subscription.started and .ended events for
// the endpoints with Subscriptions, from h's subscription updates (h needs
// Config.SubscriptionEvents), until ctx ends or h shuts down. It
// subscribes to h itself, so it must be called once per hub. The hub
// does not store subscription updates: they are durable from the moment
// they are queued, and those of a hub that dies before are lost, as is
// a burst larger than the hub's queue (logged, then it subscribes again).
func (o *Outbox) WatchSubscriptions(ctx context.Context, h *hub.Hub) error {
	if !WantsSubscriptions(o.cfg.Endpoints) {
		return nil
	}
	if o.runCtx == nil {
		return errors.New("webhook: WatchSubscriptions before Run")
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(o.runCtx, cancel) // Close ends it too
	sub, err := o.subscribe(ctx, h)
	if err != nil {
		stop()
		cancel()
		return err
	}
	o.done.Add(1)
	go func() {
		defer o.done.Done()
		defer stop()
		defer cancel()
		for {
			err := o.watch(ctx, sub)
			sub.Close()
			if ctx.Err() != nil || errors.Is(err, hub.ErrHubClosed) {
				return
			}
			o.log.Error("webhook: subscription events lost, watching again", "err", err)
			if sub, err = o.subscribe(ctx, h); err != nil {
				o.log.Error("webhook: watching subscriptions", "err", err)
				return
			}
		}
	}()
	return nil
}

type watched struct {
	*hub.Subscriber
	wake chan struct{}
}

func (o *Outbox) subscribe(ctx context.Context, h *hub.Hub) (*watched, error) {
	w := &watched{wake: make(chan struct{}, 1)}
	sub, _, err := h.Subscribe(ctx, hub.SubscribeRequest{
		Selectors: []string{subscriptionsSelector},
		Claims:    &hub.Claims{Subscribe: []string{subscriptionsSelector}},
		Notify: func() {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		},
	})
	w.Subscriber = sub
	return w, err
}

// watch drains sub until it ends, queueing its events.
func (o *Outbox) watch(ctx context.Context, sub *watched) error {
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.wake:
		}
		var err error
		buf, err = sub.Drain(buf[:0])
		if perr := o.putSubscriptions(buf, sub.ID()); perr != nil {
			o.log.Error("webhook: queueing subscription events", "err", perr)
		}
		if err != nil {
			return err
		}
	}
}

// putSubscriptions queues the subscription events in wire (SSE) form,
// but those of the watcher itself.
func (o *Outbox) putSubscriptions(wire []byte, self string) error {
	dec := sse.NewDecoder(bytes.NewReader(wire))
	var items []item
	for {
		ev, err := dec.Next()
		if err != nil {
			break
		}
		var info hub.SubscriptionInfo
		if json.Unmarshal([]byte(ev.Data), &info) != nil || info.Subscriber == self || info.ID == "" {
			continue
		}
		typ, state := EventSubscriptionEnded, "ended"
		if info.Active {
			typ, state = EventSubscriptionStarted, "started"
		}
		body, err := json.Marshal(Event{ID: "subscription:" + info.ID + ":" + state, Type: typ, Time: o.cfg.Now().UTC(), Subscription: &info})
		if err != nil {
			return err
		}
		topic := info.Topic
		items = append(items, item{body: body, id: info.ID, wants: func(ep *Endpoint) bool { return ep.Subscriptions && ep.wantsTopic(topic) }})
	}
	if len(items) == 0 {
		return nil
	}
	return o.put(items, nil)
}

// wantsTopic applies the endpoint's topic filter to a subscription's
// selector.
func (ep *Endpoint) wantsTopic(topic string) bool {
	if len(ep.Topics) == 0 {
		return true
	}
	for _, m := range ep.Topics {
		if m.Match(topic) {
			return true
		}
	}
	return false
}
