package hub

import (
	"slices"
	"strconv"
	"strings"
)

// claimSet is the compiled Claims.Subscribe of every subscriber with the
// same claims (one token handed to many clients shares one): fan-out
// decides once per private update for all of them, so the cost of a
// private update does not grow with topics × subscribers.
type claimSet struct {
	key  string      // the claims, canonical: the index key in Hub.claimSets
	sels []*Selector // compiled claims; immutable, read by any goroutine
	refs int         // guarded by Hub.mu: subscribers sharing it

	// Owned by the fan-out goroutine: ok is whether the private update
	// numbered epoch may go to these claims.
	epoch uint64
	ok    bool
}

// claimsKey returns a canonical key for a list of claims: sorted, without
// duplicates, each length-prefixed so that no two lists share a key.
func claimsKey(claims []string) string {
	c := slices.Clone(claims)
	slices.Sort(c)
	c = slices.Compact(c)
	var b strings.Builder
	for _, s := range c {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	return b.String()
}

// acquireClaimsLocked returns the shared claim set for key, making it from
// sels (compiled by the caller, outside the lock) when it is new.
func (h *Hub) acquireClaimsLocked(key string, sels []*Selector) *claimSet {
	cs := h.claimSets[key]
	if cs == nil {
		cs = &claimSet{key: key, sels: sels}
		h.claimSets[key] = cs
	}
	cs.refs++
	return cs
}

// releaseClaimsLocked drops a subscriber's reference to cs.
func (h *Hub) releaseClaimsLocked(cs *claimSet) {
	if cs.refs--; cs.refs == 0 {
		delete(h.claimSets, cs.key)
	}
}

// privateMatcher decides, on the fan-out goroutine, which claim sets may
// receive one private update. Each claim set is decided once per update,
// each template claim matched once per update whichever sets hold it, and
// exact claims are looked up in the update's topics; a template claim is
// matched only against the topics that start with its literal prefix (the
// text before its first expression, which a matching topic starts with),
// found by binary search in the sorted topics. The cost is about the
// update's topics plus the distinct claims, not topics × subscribers.
type privateMatcher struct {
	epoch  uint64
	topics []string
	set    map[string]struct{} // the topics, for updates with many
	sorted []string            // the topics sorted, made for the first template claim
	memo   map[*Selector]bool  // template claims decided for this update
}

// manyTopics is the topic count from which a private update's topics are
// indexed in a map rather than scanned.
const manyTopics = 8

// reset prepares m for the private update u.
func (m *privateMatcher) reset(u *Update) {
	m.epoch++
	m.topics = u.Topics
	m.sorted = m.sorted[:0]
	clear(m.memo)
	if len(m.set) > 4*1024 {
		m.set = nil // the last update was a rare huge one: leave its map to the GC
	}
	clear(m.set)
	if len(u.Topics) > manyTopics {
		if m.set == nil {
			m.set = make(map[string]struct{}, len(u.Topics))
		}
		for _, t := range u.Topics {
			m.set[t] = struct{}{}
		}
	}
}

// allows reports whether cs may receive the update m was reset for.
func (m *privateMatcher) allows(cs *claimSet) bool {
	if cs == nil {
		return false // anonymous
	}
	if cs.epoch != m.epoch {
		cs.epoch, cs.ok = m.epoch, m.match(cs.sels)
	}
	return cs.ok
}

func (m *privateMatcher) match(sels []*Selector) bool {
	for _, sel := range sels {
		if sel.Exact() {
			if m.hasTopic(sel.String()) {
				return true
			}
			continue
		}
		ok, seen := m.memo[sel]
		if !seen {
			ok = m.matchTemplate(sel)
			if m.memo == nil {
				m.memo = make(map[*Selector]bool)
			}
			m.memo[sel] = ok
		}
		if ok {
			return true
		}
	}
	return false
}

func (m *privateMatcher) hasTopic(t string) bool {
	if m.set != nil && len(m.topics) > manyTopics {
		_, ok := m.set[t]
		return ok
	}
	return slices.Contains(m.topics, t)
}

// matchTemplate reports whether the template (or "*") claim sel matches
// one of the topics.
func (m *privateMatcher) matchTemplate(sel *Selector) bool {
	if sel.ext != nil { // its text is no template: no literal prefix to search by
		return sel.MatchAny(m.topics)
	}
	raw := sel.String()
	prefix, _, isTemplate := strings.Cut(raw, "{")
	if !isTemplate || len(m.topics) <= manyTopics {
		return sel.MatchAny(m.topics) // "*", or few topics: scan them
	}
	if len(m.sorted) == 0 {
		m.sorted = append(m.sorted, m.topics...)
		slices.Sort(m.sorted)
	}
	i, _ := slices.BinarySearch(m.sorted, prefix)
	for ; i < len(m.sorted) && strings.HasPrefix(m.sorted[i], prefix); i++ {
		if sel.Match(m.sorted[i]) {
			return true
		}
	}
	return false
}
