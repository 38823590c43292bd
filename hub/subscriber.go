package hub

import (
	"context"
	"slices"
	"sync"
)

// SubscribeRequest is what a subscriber asks for.
type SubscribeRequest struct {
	// Selectors are the topic selectors (Mercure's topic query parameter);
	// at least one.
	Selectors []string
	// Claims are the subscriber's verified token claims. nil: anonymous,
	// never receives private updates; otherwise it receives the private
	// updates with a topic matching one of Claims.Subscribe.
	Claims *Claims
	// LastEventID is where to resume: "" for live updates only, "earliest"
	// for the whole retained history, else every retained update after it
	// (the whole retained history when it is not retained).
	LastEventID string
	// RemoteAddr is the client's address, for logs and the subscriptions
	// API.
	RemoteAddr string
	// Notify is called when there is something to Drain or the hub ended
	// the subscriber. It is called from the fan-out path (once until the
	// next Drain, however many updates arrive), possibly before Subscribe
	// returns, and must not block: signal a goroutine, as with a
	// non-blocking send on a channel of capacity 1. nil: the caller polls.
	Notify func()
}

// ReplayInfo says where a subscription resumed, for the Last-Event-ID
// (draft-08: Mercure-Last-Event-ID) response header.
type ReplayInfo struct {
	// ResumedAfter is the id the stream continues after: the requested
	// Last-Event-ID when it was found; for a live-only subscription the
	// last update the hub fanned out before it; "earliest" when the id was
	// unknown, "earliest" was asked for, or there is no such update.
	ResumedAfter string
	// Found reports whether the requested Last-Event-ID was in the history
	// (true for "earliest" and for live-only subscriptions).
	Found bool
}

// Subscriber is one subscription. The hub queues the wire bytes of the
// updates it matches; the owner of the connection takes them with Drain
// when Notify says so. Safe for concurrent use.
type Subscriber struct {
	h          *Hub
	id         string
	remoteAddr string
	topics     []string    // the selectors as given, without duplicates
	sels       []*Selector // compiled topics
	auth       []*Selector // compiled Claims.Subscribe; nil: anonymous
	claims     *Claims
	notify     func()
	members    []membership // guarded by h.mu: where s is in the index

	mu        sync.Mutex
	replay    []byte   // guarded by mu; replayed events, ahead of queue
	queue     []queued // guarded by mu; live events, allocated on first use
	replaying bool     // guarded by mu; live events wait, unannounced
	replayMax uint64   // guarded by mu; highest Seq the replay read
	liveMax   uint64   // guarded by mu; highest Seq enqueued live
	notified  bool     // guarded by mu; Notify called since the last Drain
	ended     bool     // guarded by mu; no more events will be queued
	err       error    // guarded by mu; why the hub ended it
}

type membership struct {
	g *group
	i int // position in g.subs
}

type queued struct {
	seq uint64
	b   []byte // shared with every subscriber of the update
}

type enqueueResult int

const (
	skipped      enqueueResult = iota
	enqueued                   // queued; Notify already pending
	enqueuedWake               // queued; call Notify
	enqueueFull                // queue full: ended as slow; call Notify
)

// ID returns the subscriber's id, "urn:uuid:…".
func (s *Subscriber) ID() string { return s.id }

// RemoteAddr returns SubscribeRequest.RemoteAddr.
func (s *Subscriber) RemoteAddr() string { return s.remoteAddr }

// Topics returns the subscriber's selectors, without duplicates.
func (s *Subscriber) Topics() []string { return slices.Clone(s.topics) }

// authorized reports whether s may receive a private update to topics.
func (s *Subscriber) authorized(topics []string) bool {
	for _, a := range s.auth {
		if a.MatchAny(topics) {
			return true
		}
	}
	return false
}

// wants reports whether u is for s: a topic matches a selector and, when
// private, s is authorised for one of its topics.
func (s *Subscriber) wants(u *Update) bool {
	if u.Private && !s.authorized(u.Topics) {
		return false
	}
	for _, sel := range s.sels {
		if sel.MatchAny(u.Topics) {
			return true
		}
	}
	return false
}

// enqueue queues b, the wire form of u, which matched one of s's
// selectors. It never blocks on the subscriber's reader: a full queue ends
// the subscriber.
func (s *Subscriber) enqueue(u *Update, b []byte) enqueueResult {
	if u.Private && !s.authorized(u.Topics) {
		return skipped
	}
	s.mu.Lock()
	if s.ended || u.Seq <= s.liveMax { // reached through two selectors
		s.mu.Unlock()
		return skipped
	}
	s.liveMax = u.Seq
	if !s.replaying && u.Seq <= s.replayMax { // already replayed
		s.mu.Unlock()
		return skipped
	}
	if len(s.queue) >= s.h.queueSize {
		s.ended, s.err, s.notified = true, ErrSlowSubscriber, true
		s.mu.Unlock()
		return enqueueFull
	}
	if s.queue == nil {
		s.queue = make([]queued, 0, 4)
	}
	s.queue = append(s.queue, queued{seq: u.Seq, b: b})
	r := enqueued
	if !s.notified && !s.replaying {
		s.notified, r = true, enqueuedWake
	}
	s.mu.Unlock()
	return r
}

// end marks s ended by the hub with err; it reports false when s had
// already ended.
func (s *Subscriber) end(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.ended, s.err, s.notified = true, err, true
	return true
}

// Drain appends the wire bytes of every queued event to dst, oldest first
// (replayed events, then live ones, with no gap and no duplicate), and
// empties the queue. Once the hub has ended the subscriber it returns, after
// what remained, ErrSlowSubscriber or ErrHubClosed: the stream should end.
// After Close it appends nothing.
func (s *Subscriber) Drain(dst []byte) ([]byte, error) {
	s.mu.Lock()
	dst = append(dst, s.replay...)
	s.replay = nil
	n := len(s.queue)
	for i := range s.queue {
		dst = append(dst, s.queue[i].b...)
	}
	clear(s.queue)
	if cap(s.queue) > 64 {
		s.queue = nil // a burst is over: give its memory back
	} else {
		s.queue = s.queue[:0]
	}
	s.notified = false
	err := s.err
	s.mu.Unlock()
	if n > 0 {
		s.h.metrics.QueueDepth(n)
	}
	return dst, err
}

// Close ends the subscription from the client's side (the client went
// away): the hub forgets it. Idempotent.
func (s *Subscriber) Close() { s.close(DisconnectGone) }

// Expire ends the subscription because its token expired: as Close, but
// counted with reason "auth".
func (s *Subscriber) Expire() { s.close(DisconnectAuth) }

// Stalled ends the subscription because its client stopped reading (its
// connection accepted nothing for the write timeout): counted as slow, as
// a full queue is.
func (s *Subscriber) Stalled() { s.close(DisconnectSlow) }

func (s *Subscriber) close(reason string) {
	s.mu.Lock()
	wasEnded := s.ended
	s.ended, s.notified = true, true
	s.replay, s.queue = nil, nil
	s.mu.Unlock()
	h := s.h
	h.mu.Lock()
	removed := h.unregisterLocked(s)
	h.mu.Unlock()
	if !removed || wasEnded {
		return // already closed, or ended (and counted) by the hub
	}
	h.metrics.SubscriberDisconnected(reason)
	h.publishEventsAsync(s, false)
}

// Subscribe registers a subscriber, replays the history it asks for and
// returns it with where it resumed. Call Drain at once for the replayed
// events, then whenever Notify is called. Close it when the client goes.
//
// Live updates are registered for before the history is read, and those
// the replay already covered are skipped, so none is lost or repeated. The
// replay is read into the subscriber's memory in full: it is bounded by the
// store's retention, not by Config.QueueSize (which bounds live updates,
// including those arriving during the replay).
func (h *Hub) Subscribe(ctx context.Context, req SubscribeRequest) (*Subscriber, ReplayInfo, error) {
	if len(req.Selectors) == 0 {
		return nil, ReplayInfo{}, ErrNoSelector
	}
	s := &Subscriber{
		h:          h,
		id:         newUUIDURN(),
		remoteAddr: req.RemoteAddr,
		topics:     dedupe(req.Selectors),
		claims:     req.Claims,
		notify:     req.Notify,
		replaying:  req.LastEventID != "",
	}
	s.sels = make([]*Selector, len(s.topics))
	for i, t := range s.topics {
		sel, err := h.selectors.get(t)
		if err != nil {
			return nil, ReplayInfo{}, err
		}
		s.sels[i] = sel
	}
	if req.Claims != nil {
		s.auth = make([]*Selector, len(req.Claims.Subscribe))
		for i, t := range req.Claims.Subscribe {
			sel, err := h.selectors.get(t)
			if err != nil {
				return nil, ReplayInfo{}, err
			}
			s.auth[i] = sel
		}
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ReplayInfo{}, ErrHubClosed
	}
	h.registerLocked(s)
	last := h.last.Load() // the last update s will not get live
	h.mu.Unlock()
	h.metrics.SubscriberConnected()
	if h.subEvents {
		h.publishEvents(ctx, s, true)
	}

	if req.LastEventID == "" {
		info := ReplayInfo{ResumedAfter: "earliest", Found: true}
		if last != nil {
			info.ResumedAfter = last.ID
		}
		return s, info, nil
	}

	info, err := h.replay(ctx, s, req.LastEventID)
	if err != nil {
		s.Close()
		return nil, ReplayInfo{}, err
	}
	return s, info, nil
}

// replay reads the history after lastEventID into s, then lets live
// updates through.
func (h *Hub) replay(ctx context.Context, s *Subscriber, lastEventID string) (ReplayInfo, error) {
	after := lastEventID
	if after == "earliest" {
		after = ""
	}
	var buf []byte
	var maxSeq uint64
	var encErr error
	anchor, found, err := h.store.After(ctx, after, func(u *Update) bool {
		maxSeq = max(maxSeq, u.Seq)
		if s.wants(u) {
			buf, encErr = encode(buf, u)
			if encErr != nil {
				h.log.Error("hub: stored update cannot be encoded; skipped", "id", u.ID, "err", encErr)
			}
		}
		return true
	})
	if err != nil {
		return ReplayInfo{}, err
	}
	info := ReplayInfo{ResumedAfter: "earliest", Found: found}
	if found && after != "" {
		info.ResumedAfter = lastEventID
	}
	h.metrics.Replay(found)

	s.mu.Lock()
	s.replaying = false
	// Live deliveries at or below the anchor may still come: fan-out lags
	// the store. They are as much "already seen" as the replayed ones.
	s.replayMax = max(maxSeq, anchor)
	if !s.ended {
		s.replay = buf
	}
	// Drop live updates the replay already holds; both are in Seq order.
	i := 0
	for i < len(s.queue) && s.queue[i].seq <= maxSeq {
		i++
	}
	if i > 0 {
		n := copy(s.queue, s.queue[i:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
	}
	wake := (len(s.replay) > 0 || len(s.queue) > 0) && !s.notified
	if wake {
		s.notified = true
	}
	s.mu.Unlock()
	if wake && s.notify != nil {
		s.notify()
	}
	return info, nil
}

// dedupe returns ss without repeated strings, in their first order.
func dedupe(ss []string) []string {
	out := make([]string, 0, len(ss))
	if len(ss) <= 16 {
		for _, s := range ss {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	seen := make(map[string]bool, len(ss))
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
