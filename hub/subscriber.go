package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// SubscribeRequest is what a subscriber asks for.
type SubscribeRequest struct {
	// Selectors are the topic selectors (Mercure's topic query parameter);
	// at least one.
	Selectors []string
	// Matchers are selectors compiled by the caller (ExactSelector,
	// MatcherSelector: draft-08's match, match_exact, match_urlpattern),
	// beside Selectors; at least one of the two is needed. Their length is
	// the caller's to bound.
	Matchers []*Selector
	// MatcherPayloads, when not nil, are the payloads (draft-08: of the
	// first subscribe authorization detail matching each matcher) that
	// subscription events and the subscriptions API show, one per
	// Matchers entry; nil entries show none.
	MatcherPayloads []json.RawMessage
	// Claims are the subscriber's verified token claims. nil: anonymous,
	// never receives private updates; otherwise it receives the private
	// updates with a topic matching one of Claims.Subscribe.
	Claims *Claims
	// ClaimMatchers, when not nil, are the subscribe grants of Claims
	// compiled by the caller (a draft-08 access token's authorization
	// details: ExactSelector, MatcherSelector, "*"), used instead of
	// Claims.Subscribe for private updates and replay; empty: none.
	ClaimMatchers []*Selector
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
	// last public (not private) update the hub fanned out before it, so
	// the header never names an update the subscriber may not receive;
	// "earliest" when the id was
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
	uuid       [16]byte // ID formats it: an idle subscriber keeps 16 bytes, not a 45-byte string
	remoteAddr string
	topics     []string           // the selectors as given, without duplicates
	sels       []*Selector        // compiled topics
	payloads   *[]json.RawMessage // nil, or one per matcher (topics[legacy:])
	// claims are the compiled Claims.Subscribe, shared by every subscriber
	// with the same; set at registration, before the replay reads them;
	// nil: anonymous.
	claims  *claimSet
	token   *Claims
	notify  func()
	members []membership // guarded by h.mu: where s is in the index

	// rc is the replay's: nil for a live-only subscriber.
	rc *replayCtl

	mu        sync.Mutex
	replay    []byte   // guarded by mu; replayed events (at most about a page), ahead of queue
	queue     []queued // guarded by mu; live events, allocated on first use
	replayMax uint64   // guarded by mu; highest Seq the replay read
	liveMax   uint64   // guarded by mu; highest Seq enqueued live
	// lastLiveOnly is the last live-only update (Seq 0) queued, so that one
	// reaching s through two selectors is queued once. guarded by mu
	lastLiveOnly *Update
	replaying    bool  // guarded by mu; live events wait, unannounced
	notified     bool  // guarded by mu; Notify called since the last Drain
	ended        bool  // guarded by mu; no more events will be queued
	legacy       int32 // topics[:legacy] are topic= selectors, the others matchers
	err          error // guarded by mu; why the hub ended it
}

// replayCtl is what a resuming subscriber's replay needs beside it; live-only
// subscribers (most of an idle hub) have none.
type replayCtl struct {
	// drained is signalled (without blocking; capacity 1) when Drain
	// takes the replayed events: the replay reads its next page then.
	drained chan struct{}
	stop    context.CancelFunc // guarded by the Subscriber's mu; ends a replay reading its pages
}

// stopReplayLocked ends a replay reading its pages. Called with s.mu held.
func (s *Subscriber) stopReplayLocked() {
	if s.rc != nil && s.rc.stop != nil {
		s.rc.stop()
	}
}

type membership struct {
	g *group
	i int // position in g.subs
}

type queued struct {
	seq uint64
	f   *fanned // shared with every subscriber of the update
}

// fanned is an update's wire form as queued for its subscribers, with the
// time its fan-out began (monoNow) for Config.Metrics' QueueWait.
type fanned struct {
	b  []byte
	at int64
}

// monoEpoch anchors monoNow: a monotonic clock read as 8 bytes.
var monoEpoch = time.Now()

// monoNow is the time since monoEpoch in nanoseconds.
func monoNow() int64 { return int64(time.Since(monoEpoch)) }

type enqueueResult int

const (
	skipped      enqueueResult = iota
	enqueued                   // queued; Notify already pending
	enqueuedWake               // queued; call Notify
	enqueueFull                // queue full: ended as slow; call Notify
)

// ID returns the subscriber's id, "urn:uuid:…".
func (s *Subscriber) ID() string { return formatUUIDURN(&s.uuid) }

// RemoteAddr returns SubscribeRequest.RemoteAddr.
func (s *Subscriber) RemoteAddr() string { return s.remoteAddr }

// Topics returns the subscriber's selectors, without duplicates.
func (s *Subscriber) Topics() []string { return slices.Clone(s.topics) }

// authorized reports whether s may receive a private update to topics.
func (s *Subscriber) authorized(topics []string) bool {
	if s.claims == nil {
		return false
	}
	for _, a := range s.claims.sels {
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

// enqueue queues f, the wire form of u, which matched one of s's
// selectors (and, when private, that s may receive: fan-out decided). It never blocks on the subscriber's reader: a full queue ends
// the subscriber.
func (s *Subscriber) enqueue(u *Update, f *fanned) enqueueResult {
	s.mu.Lock()
	switch {
	case s.ended:
		s.mu.Unlock()
		return skipped
	case u.Seq == 0: // live only, never replayed
		if s.lastLiveOnly == u { // reached through two selectors
			s.mu.Unlock()
			return skipped
		}
		s.lastLiveOnly = u
	case u.Seq <= s.liveMax: // reached through two selectors
		s.mu.Unlock()
		return skipped
	default:
		s.liveMax = u.Seq
		if !s.replaying && u.Seq <= s.replayMax { // already replayed
			s.mu.Unlock()
			return skipped
		}
	}
	if len(s.queue) >= s.h.queueSize {
		s.ended, s.err, s.notified = true, ErrSlowSubscriber, true
		s.mu.Unlock()
		return enqueueFull
	}
	if s.queue == nil {
		s.queue = make([]queued, 0, 4)
	}
	s.queue = append(s.queue, queued{seq: u.Seq, f: f})
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
	s.stopReplayLocked()
	return true
}

// Drain appends the wire bytes of every queued event to dst, oldest first
// (replayed events, then live ones, with no gap and no duplicate), and
// empties the queue. Once the hub has ended the subscriber it returns, after
// what remained, ErrSlowSubscriber or ErrHubClosed: the stream should end.
// After Close it appends nothing.
func (s *Subscriber) Drain(dst []byte) ([]byte, error) {
	s.mu.Lock()
	tookReplay := len(s.replay) > 0
	dst = append(dst, s.replay...)
	s.replay = nil
	n := 0
	var oldest int64
	if !s.replaying { // live events wait for the end of the replay
		n = len(s.queue)
		if n > 0 {
			oldest = s.queue[0].f.at
		}
		for i := range s.queue {
			dst = append(dst, s.queue[i].f.b...)
		}
		clear(s.queue)
		if cap(s.queue) > 64 {
			s.queue = nil // a burst is over: give its memory back
		} else {
			s.queue = s.queue[:0]
		}
	}
	s.notified = false
	err := s.err
	s.mu.Unlock()
	if tookReplay && s.rc != nil {
		select {
		case s.rc.drained <- struct{}{}:
		default:
		}
	}
	if n > 0 {
		s.h.metrics.QueueDepth(n)
		if qw := s.h.queueWait; qw != nil {
			qw.QueueWait(time.Duration(monoNow() - oldest))
		}
	}
	return dst, err
}

// Close ends the subscription from the client's side (the client went
// away): the hub forgets it. Idempotent.
func (s *Subscriber) Close() { s.close(DisconnectGone) }

// EndExpired ends the subscription because its token expired: as Close,
// but counted with reason "auth".
func (s *Subscriber) EndExpired() { s.close(DisconnectAuth) }

// EndSlow ends the subscription because its client stopped reading (its
// connection accepted nothing for the write timeout): as Close, but
// counted as slow, as a full queue is.
func (s *Subscriber) EndSlow() { s.close(DisconnectSlow) }

func (s *Subscriber) close(reason string) {
	s.mu.Lock()
	wasEnded := s.ended
	s.ended, s.notified = true, true
	s.replay, s.queue = nil, nil
	s.stopReplayLocked()
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

// Subscribe registers a subscriber, reads the first page of the history it
// asks for and returns it with where it resumed. Call Drain at once for the
// replayed events, then whenever Notify is called. Close it when the client
// goes.
//
// Live updates are registered for before the history is read, and those
// the replay already covered are skipped, so none is lost or repeated. The
// replay is streamed from the store in pages of Config.ReplayPageBytes: the
// next page is read when Drain has taken the last, so a replaying
// subscriber holds about one page whatever the history holds. Live updates
// arriving meanwhile wait in its queue, bounded by Config.QueueSize: a
// replay that takes so long that they overflow it ends the subscriber as
// slow, and its client resumes from where it got to.
func (h *Hub) Subscribe(ctx context.Context, req SubscribeRequest) (*Subscriber, ReplayInfo, error) {
	if len(req.Selectors) == 0 && len(req.Matchers) == 0 {
		return nil, ReplayInfo{}, ErrNoSelector
	}
	total := 0
	for _, sel := range req.Selectors {
		if len(sel) > MaxSelectorLength { // before any work, even dedupe
			return nil, ReplayInfo{}, fmt.Errorf("%w (%d bytes; max %d)", ErrSelectorTooLong, len(sel), MaxSelectorLength)
		}
		if total += len(sel); total > MaxSubscriptionSelectorBytes {
			return nil, ReplayInfo{}, fmt.Errorf("%w: the selectors together are over %d bytes", ErrSelectorTooLong, MaxSubscriptionSelectorBytes)
		}
		if strings.HasPrefix(sel, "\x00") {
			return nil, ReplayInfo{}, ErrReservedSelector
		}
	}
	s := &Subscriber{
		h:          h,
		uuid:       newUUID(),
		remoteAddr: req.RemoteAddr,
		topics:     dedupe(req.Selectors),
		token:      req.Claims,
		notify:     req.Notify,
		replaying:  req.LastEventID != "",
	}
	if s.replaying {
		s.rc = &replayCtl{drained: make(chan struct{}, 1)}
	}
	s.sels = make([]*Selector, len(s.topics))
	for i, t := range s.topics {
		sel, err := h.selectors.get(t)
		if err != nil {
			return nil, ReplayInfo{}, err
		}
		s.sels[i] = sel
	}
	s.legacy = int32(len(s.topics))
	for i, m := range req.Matchers {
		if !slices.ContainsFunc(s.sels, func(o *Selector) bool { return o.raw == m.raw }) {
			s.sels = append(s.sels, m)
			s.topics = append(s.topics, m.String())
			if i < len(req.MatcherPayloads) && req.MatcherPayloads[i] != nil {
				if s.payloads == nil {
					p := make([]json.RawMessage, len(req.Matchers))
					s.payloads = &p
				}
				(*s.payloads)[len(s.topics)-1-int(s.legacy)] = req.MatcherPayloads[i]
			}
		}
	}
	// Claims are compiled here, not under the hub's lock; a claim set
	// already shared by others is reused and this compilation dropped.
	var claimsKeyOf string
	var claimSels []*Selector
	if req.Claims != nil && req.ClaimMatchers != nil {
		claimSels = req.ClaimMatchers
		keys := make([]string, len(claimSels))
		for i, sel := range claimSels {
			keys[i] = sel.raw
		}
		// NUL first: never the key of draft-07 claims, whose key starts
		// with a length (or is empty), though "foo{x}" may be an exact
		// grant here and a template there.
		claimsKeyOf = "\x00" + claimsKey(keys)
	} else if req.Claims != nil {
		claimSels = make([]*Selector, len(req.Claims.Subscribe))
		for i, t := range req.Claims.Subscribe {
			sel, err := h.selectors.get(t)
			if err != nil {
				return nil, ReplayInfo{}, err
			}
			claimSels[i] = sel
		}
		claimsKeyOf = claimsKey(req.Claims.Subscribe)
	}

	// Every update acknowledged before this subscribe is fanned out
	// before s is registered, so it counts as history (ReplayInfo, the
	// replay's end), not as live.
	h.awaitFanned(ctx)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ReplayInfo{}, ErrHubClosed
	}
	if req.Claims != nil {
		s.claims = h.acquireClaimsLocked(claimsKeyOf, claimSels)
	}
	h.registerLocked(s)
	last := h.last.Load() // the last update s will not get live
	lastPublic := h.lastPublic.Load()
	h.mu.Unlock()
	h.metrics.SubscriberConnected()
	if h.subEvents {
		h.publishEvents(ctx, s, true)
	}

	if req.LastEventID == "" {
		info := ReplayInfo{ResumedAfter: EarliestID, Found: true}
		if lastPublic != nil {
			info.ResumedAfter = WireID(lastPublic.ID)
		}
		return s, info, nil
	}

	var target uint64
	if last != nil {
		target = last.Seq
	}
	info, err := h.replay(ctx, s, req.LastEventID, target)
	if err != nil {
		s.Close()
		return nil, ReplayInfo{}, err
	}
	return s, info, nil
}

// replayer is the state of one subscriber's paged replay, owned by the
// goroutine that reads it (Subscribe for the first page, then rest).
type replayer struct {
	h      *Hub
	s      *Subscriber
	next   uint64 // Cursor.Seq of the next page
	target uint64 // the replay is complete once it has read this far (0: to the store's end)
	anchor uint64 // Seq of the Last-Event-ID, 0 when unknown
}

// replay reads the first page of the history after lastEventID into s and,
// when the history goes on, starts rest for the others. target is
// the Seq of the last update fanned out before s was registered: every
// update after it reaches s live.
func (h *Hub) replay(ctx context.Context, s *Subscriber, lastEventID string, target uint64) (ReplayInfo, error) {
	from := Cursor{ID: lastEventID}
	switch {
	case lastEventID == EarliestID:
		from.ID = ""
	case len(lastEventID) > MaxIDLength: // no update has it: spare the store the look-up
		from.ID = unknownID
	}
	p, err := h.store.After(ctx, from, h.pageBytes)
	if err != nil {
		return ReplayInfo{}, err
	}
	info := ReplayInfo{ResumedAfter: EarliestID, Found: p.Found}
	if p.Found && from.ID != "" {
		info.ResumedAfter = lastEventID
	}
	h.metrics.Replay(p.Found)
	r := &replayer{h: h, s: s, target: target, anchor: p.Anchor}
	if r.take(p) {
		r.finish()
		return info, nil
	}
	rctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.rc.stop = cancel
	ended := s.ended
	s.mu.Unlock()
	if ended {
		cancel()
		return info, nil
	}
	// Started under the hub's lock, unless closed: Shutdown's wait for the
	// replays then sees every one it must.
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		cancel() // Shutdown ends s
		return info, nil
	}
	h.replays.Go(func() {
		defer cancel()
		r.rest(rctx)
	})
	return info, nil
}

// take encodes the updates of p that s wants into its replay buffer, up to
// the hub's page size (one update when a single one is larger: the rest of
// the page is read again with the next), and notifies s. It reports whether
// the replay is complete.
func (r *replayer) take(p Page) (done bool) {
	h, s := r.h, r.s
	var buf []byte
	next := p.Next
	for i, u := range p.Updates {
		if len(buf) > 0 && len(buf) >= h.pageBytes {
			next = p.Updates[i-1].Seq // the rest comes with the next page
			p.End = false
			break
		}
		if s.wants(u) {
			var err error
			if buf, err = encode(buf, u); err != nil {
				h.log.Error("hub: stored update cannot be encoded; skipped", "id", u.ID, "err", err)
			}
		}
	}
	r.next = max(r.next, next)
	done = p.End || (r.target > 0 && r.next >= r.target)
	if len(buf) == 0 {
		return done
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return true
	}
	if len(s.replay) == 0 {
		s.replay = buf
	} else { // not expected: rest waits until the last page is drained
		s.replay = append(s.replay, buf...)
	}
	wake := !s.notified
	s.notified = true
	s.mu.Unlock()
	if wake && s.notify != nil {
		s.notify()
	}
	return done
}

// rest reads the pages after the first, each once s has drained the one
// before, then lets live updates through. A store error ends s: its client
// reconnects and resumes where it got to.
func (r *replayer) rest(ctx context.Context) {
	s := r.s
	for {
		s.mu.Lock()
		ended, full := s.ended, len(s.replay) > 0
		s.mu.Unlock()
		if ended {
			return
		}
		if full {
			select {
			case <-s.rc.drained:
				continue
			case <-ctx.Done():
				return
			}
		}
		p, err := r.h.store.After(ctx, Cursor{Seq: r.next}, r.h.pageBytes)
		if err != nil {
			if ctx.Err() == nil {
				r.h.endReplayFailed(s, err)
			}
			return
		}
		prev := r.next
		if r.take(p) {
			r.finish()
			return
		}
		if r.next <= prev { // an empty page that is not the end: it would never finish
			r.h.endReplayFailed(s, fmt.Errorf("store page after Seq %d is empty and not the end", prev))
			return
		}
	}
}

// finish ends the replay: live updates the replay covered are dropped and
// the others let through.
func (r *replayer) finish() {
	s := r.s
	s.mu.Lock()
	s.replaying = false
	// Live deliveries at or below the anchor may still come: fan-out lags
	// the store. They are as much "already seen" as the replayed ones, so
	// both queued and later live updates up to the larger are dropped.
	s.replayMax = max(r.next, r.anchor)
	kept := s.queue[:0]
	for _, q := range s.queue {
		if q.seq == 0 || q.seq > s.replayMax { // live only, or not replayed
			kept = append(kept, q)
		}
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	wake := (len(s.replay) > 0 || len(s.queue) > 0) && !s.notified && !s.ended
	if wake {
		s.notified = true
	}
	s.mu.Unlock()
	if wake && s.notify != nil {
		s.notify()
	}
}

// endReplayFailed ends s, whose replay could not read the store.
func (h *Hub) endReplayFailed(s *Subscriber, err error) {
	if !s.end(fmt.Errorf("%w: %w", ErrReplayFailed, err)) {
		return
	}
	h.mu.Lock()
	h.unregisterLocked(s)
	h.mu.Unlock()
	h.metrics.SubscriberDisconnected(DisconnectGone)
	h.log.Warn("hub: replay failed; subscriber disconnected", "subscriber", s.ID(), "err", err)
	if s.notify != nil {
		s.notify()
	}
	h.publishEventsAsync(s, false)
}

// unknownID is an id no update can have (it has a control character), for
// a Last-Event-ID that cannot be retained.
const unknownID = "\x00"

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
