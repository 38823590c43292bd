package hub

import (
	"container/list"
	"errors"
	"fmt"
	"time"
)

// RetentionRule bounds the history of the topics it matches, on top of the
// store's own bounds: a topic policy's "keep the last N" or "keep a day".
// An update is subject to the first rule matching its canonical topic
// (Topics[0]).
type RetentionRule struct {
	// Name identifies the rule in errors.
	Name string
	// Match reports whether a topic is the rule's.
	Match func(topic string) bool
	// MaxUpdates keeps only the last MaxUpdates updates of each topic the
	// rule matches (0: no bound by count).
	MaxUpdates int
	// MaxAge drops the rule's updates older than this (0: no bound by age).
	MaxAge time.Duration
}

// RetentionStore is implemented by stores that apply retention rules per
// topic (all of ssekit's). SetRetention is called once, before the store
// is used; the rules then hold for every update appended, and for those
// retained from before (a store rebuilds its index from its history).
type RetentionStore interface {
	SetRetention(rules []RetentionRule) error
}

// ErrInvalidRetention is returned by SetRetention for rules it cannot use.
var ErrInvalidRetention = errors.New("hub: invalid retention rule")

// CheckRetention checks rules as SetRetention does.
func CheckRetention(rules []RetentionRule) error {
	for _, r := range rules {
		switch {
		case r.Match == nil:
			return fmt.Errorf("%w: rule %q has no matcher", ErrInvalidRetention, r.Name)
		case r.MaxUpdates < 0 || r.MaxAge < 0:
			return fmt.Errorf("%w: rule %q has a negative bound", ErrInvalidRetention, r.Name)
		case r.MaxUpdates == 0 && r.MaxAge == 0:
			return fmt.Errorf("%w: rule %q bounds nothing", ErrInvalidRetention, r.Name)
		}
	}
	return nil
}

// Retention is the index a store keeps to apply retention rules with O(1)
// amortised work per append: for each topic under a count rule, the Seqs
// of its last MaxUpdates updates; for each age rule, the Seqs and Times of
// its updates in order. Add tells the store which Seqs to delete. A store
// feeds it every update in Seq order (its append path, or its delivery
// path for a store shared by several nodes, so every node computes the
// same deletions and deleting twice is harmless), and calls Expired in
// After so an update past its rule's age is never returned, even before
// it is deleted.
//
// Its memory is bounded by the store's own history bound (window, in
// updates): an entry older than the last window Seqs is dropped without a
// deletion, since the store has evicted it already, and a topic with no
// update in the window is forgotten. With no window (0) it is bounded by
// the number of updates the rules retain.
//
// A Retention is not safe for concurrent use except for Expired, which
// only reads the rules.
type Retention struct {
	rules  []RetentionRule
	window uint64 // in updates
	n      uint64 // updates added
	last   uint64 // the highest Seq added

	topics map[string]*list.Element // of *topicSeqs, least recently appended first
	order  list.List
	ages   [][]seqTime // per rule with MaxAge, oldest first, from head[i]
	head   []int
}

type topicSeqs struct {
	topic string
	seqs  []seqOrd // a ring of up to MaxUpdates
	start int
	n     int
}

// seqOrd is an update's Seq and its ordinal among the updates added,
// which says whether it is beyond the window (Seqs need not be
// consecutive: Redis's are times).
type seqOrd struct{ seq, ord uint64 }

type seqTime struct {
	seqOrd
	t time.Time
}

// NewRetention returns the index for rules (checked with CheckRetention),
// for a store retaining at most window updates (0: no bound by count).
func NewRetention(rules []RetentionRule, window int) (*Retention, error) {
	if err := CheckRetention(rules); err != nil {
		return nil, err
	}
	return &Retention{
		rules:  rules,
		window: uint64(max(window, 0)),
		topics: make(map[string]*list.Element),
		ages:   make([][]seqTime, len(rules)),
		head:   make([]int, len(rules)),
	}, nil
}

// Rule returns the index of the rule u is subject to, or -1.
func (r *Retention) Rule(u *Update) int {
	if r == nil || len(u.Topics) == 0 {
		return -1
	}
	for i := range r.rules {
		if r.rules[i].Match(u.Topics[0]) {
			return i
		}
	}
	return -1
}

// Expired reports whether u is older at now than its rule allows.
func (r *Retention) Expired(u *Update, now time.Time) bool {
	i := r.Rule(u)
	return i >= 0 && r.rules[i].MaxAge > 0 && now.Sub(u.Time) > r.rules[i].MaxAge
}

// HasAge reports whether some rule bounds by age.
func (r *Retention) HasAge() bool {
	if r == nil {
		return false
	}
	for _, x := range r.rules {
		if x.MaxAge > 0 {
			return true
		}
	}
	return false
}

// stale reports whether x is beyond the store's window.
func (r *Retention) stale(x seqOrd) bool {
	return r.window > 0 && x.ord+r.window <= r.n
}

// Last returns the highest Seq added: a store feeding the index from a
// history read and then from its delivery path skips what is not newer.
func (r *Retention) Last() uint64 { return r.last }

// Add records u (its Seq and Time set, Seqs increasing from call to call)
// and calls drop with each Seq retention now deletes: the oldest of u's
// topic beyond its count, and updates past their rule's age at now (which
// may include u itself). drop may be called for a Seq the store has
// evicted already.
func (r *Retention) Add(u *Update, now time.Time, drop func(seq uint64)) {
	if r == nil {
		return
	}
	r.last = max(r.last, u.Seq)
	r.n++
	x := seqOrd{u.Seq, r.n}
	// Forget the least recently appended topic when all its Seqs are
	// beyond the window: one per append keeps the map bounded.
	if e := r.order.Front(); e != nil {
		ts := e.Value.(*topicSeqs)
		if ts.n == 0 || r.stale(ts.seqs[(ts.start+ts.n-1)%len(ts.seqs)]) {
			r.order.Remove(e)
			delete(r.topics, ts.topic)
		}
	}
	i := r.Rule(u)
	if i >= 0 {
		rule := &r.rules[i]
		if rule.MaxUpdates > 0 {
			r.count(u.Topics[0], x, rule.MaxUpdates, drop)
		}
		if rule.MaxAge > 0 {
			r.ages[i] = append(r.ages[i], seqTime{x, u.Time})
		}
	}
	r.Expire(now, drop)
}

func (r *Retention) count(topic string, x seqOrd, n int, drop func(uint64)) {
	e, ok := r.topics[topic]
	if !ok {
		e = r.order.PushBack(&topicSeqs{topic: topic, seqs: make([]seqOrd, min(n, 16))})
		r.topics[topic] = e
	} else {
		r.order.MoveToBack(e)
	}
	ts := e.Value.(*topicSeqs)
	// Drop what the store evicted already.
	for ts.n > 0 && r.stale(ts.seqs[ts.start]) {
		ts.start = (ts.start + 1) % len(ts.seqs)
		ts.n--
	}
	if ts.n == n {
		drop(ts.seqs[ts.start].seq)
		ts.start = (ts.start + 1) % len(ts.seqs)
		ts.n--
	}
	if ts.n == len(ts.seqs) { // grow the ring, up to n
		grown := make([]seqOrd, min(2*len(ts.seqs), n))
		for j := 0; j < ts.n; j++ {
			grown[j] = ts.seqs[(ts.start+j)%len(ts.seqs)]
		}
		ts.seqs, ts.start = grown, 0
	}
	ts.seqs[(ts.start+ts.n)%len(ts.seqs)] = x
	ts.n++
}

// Expire calls drop with each Seq past its rule's age at now, once.
func (r *Retention) Expire(now time.Time, drop func(seq uint64)) {
	if r == nil {
		return
	}
	for i := range r.ages {
		q, h := r.ages[i], r.head[i]
		for h < len(q) && (r.stale(q[h].seqOrd) || now.Sub(q[h].t) > r.rules[i].MaxAge) {
			if !r.stale(q[h].seqOrd) {
				drop(q[h].seq)
			}
			h++
		}
		if h > 64 && h >= len(q)/2 { // compact: amortised O(1)
			n := copy(q, q[h:])
			q, h = q[:n], 0
		}
		r.ages[i], r.head[i] = q, h
	}
}
