// Package hub is the publish/subscribe core of ssekit: topics and selector
// matching (exact, RFC 6570 URI templates, "*"), subscribers with bounded
// queues, fan-out that encodes each update once, replay from a Store, and
// private updates for authorised subscribers. It speaks no HTTP; the server
// package puts the Mercure protocol on top of it.
//
// The package imports only the standard library and the root sse package.
//
// # Locks
//
// Lock order: Hub.mu, then Subscriber.mu; no other lock is taken with
// either held. The fan-out goroutine is the only one that fans out, so its
// scratch state (and each claim set's per-update verdict) needs no lock. A
// replaying subscriber's page reader holds no lock while it reads the
// store, and Subscriber.mu only while it hands a page over. The store's
// Subscribe callback takes no hub lock (it only sends to the fan-out
// queue, blocking when that is full), and the hub holds none of its locks
// while it calls the Store, so a store's locks never nest with the hub's.
// Notify callbacks, Metrics and the Logger are called with no hub lock
// held.
package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ssekit/sse"
)

// Errors of the hub, to test with errors.Is. The store's are in store.go,
// ErrUnauthorized in auth.go.
var (
	// ErrInvalidUpdate is wrapped, with a one-line reason, by Publish for an
	// update it refuses.
	ErrInvalidUpdate = errors.New("hub: invalid update")
	// ErrSlowSubscriber is returned by Drain once the subscriber's queue
	// filled up and the hub ended it; the client should reconnect with its
	// last event id to get the rest.
	ErrSlowSubscriber = errors.New("hub: subscriber too slow, disconnected")
	// ErrHubClosed is returned by a hub after Shutdown, and by Drain for a
	// subscriber ended by Shutdown.
	ErrHubClosed = errors.New("hub: closed")
	// ErrNoSelector is returned by Subscribe without a topic selector.
	ErrNoSelector = errors.New("hub: no topic selector")
	// ErrReplayFailed is returned by Drain (wrapped with the store's error)
	// when a replay could not read its next page: the client should
	// reconnect with its last event id.
	ErrReplayFailed = errors.New("hub: replay failed")
	// ErrInvalidConfig is wrapped by New for a Config it cannot use.
	ErrInvalidConfig = errors.New("hub: invalid config")
)

// DefaultQueueSize is Config.QueueSize's default.
const DefaultQueueSize = 1024

// fanQueueSize is how many stored updates may wait for fan-out.
const fanQueueSize = 1024

// storeCallTimeout bounds the store calls that have no caller's context:
// Subscribe in New.
const storeCallTimeout = 10 * time.Second

// Config configures a Hub. The zero value works.
type Config struct {
	// Store keeps the history and carries updates between hub nodes. nil
	// means a MemoryStore with default bounds, which Shutdown closes; a
	// Store given here is closed by the caller.
	Store Store
	// QueueSize bounds how many live updates wait for one subscriber to
	// Drain them; a subscriber whose queue is full when an update arrives
	// is ended with ErrSlowSubscriber. 0 means DefaultQueueSize (1024).
	QueueSize int
	// Logger receives the hub's logs (slow subscribers at Warn); nil
	// discards them.
	Logger *slog.Logger
	// Metrics receives the hub's measurements; nil means NopMetrics.
	Metrics Metrics
	// SubscriptionEvents sends a private Mercure subscription update
	// (topic /.well-known/mercure/subscriptions/{topic}/{subscriber}) for
	// every selector of a subscriber when it connects and disconnects.
	// They go to the subscribers of this hub live only, with no id: they
	// are not stored, so they never take the place of real updates in the
	// history.
	SubscriptionEvents bool
	// SelectorCacheSize bounds how many compiled selectors the hub keeps;
	// 0 means DefaultSelectorCacheSize (10,000).
	SelectorCacheSize int
	// ReplayPageBytes is the size of the pages a replay reads from the
	// store (see Store.After), and so about the most replayed events one
	// subscriber holds. 0 means DefaultPageBytes (1 MiB).
	ReplayPageBytes int
}

// Hub routes published updates to subscribers. Create it with New; it is
// safe for concurrent use.
type Hub struct {
	store     Store
	ownStore  bool
	queueSize int
	pageBytes int
	log       *slog.Logger
	metrics   Metrics
	queueWait QueueWaitMetrics // metrics, when it observes queue waits
	subEvents bool
	selectors *selectorCache
	matchers  *selectorCache // MatcherSelectors by key (CachedMatcher); apart, so no selector or claim can take a key
	stopFan   func()

	// fanQueue carries updates from the store's Subscribe callback to the
	// fan-out goroutine, so a publish is acknowledged once it is stored,
	// without waiting for the fan-out behind it. When fan-out falls
	// fanQueueSize updates behind, the callback blocks: publishers are
	// held back rather than memory growing.
	fanQueue chan *Update
	fanDone  chan struct{}
	// liveQueue carries the hub's own live-only updates (subscription
	// events, Seq 0) to the fan-out goroutine: they are never stored, so
	// they cannot evict or bloat the history resumers rely on. Never
	// closed; senders give up once fanDone is closed.
	liveQueue chan *Update

	// Owned by the fan-out goroutine (fanLoop), the only caller of fanOut.
	scratch []*Subscriber  // subscribers to wake
	encBuf  []byte         // encoding of the update being fanned out
	private privateMatcher // who may receive the private update being fanned out
	// fanned is the Seq of the last update fanOut finished with (every
	// matching subscriber queued and notified).
	fanned atomic.Uint64
	// acked is the highest Seq this hub's Publish or PublishBatch has
	// returned: the newest update a publisher may already have been told
	// is stored. Subscribe waits for fanned to reach it (awaitFanned), so a
	// subscribe made after a publish's answer sees that update as fanned
	// out before it (its ReplayInfo, its replay's end), whatever the
	// fan-out goroutine's timing.
	acked     atomic.Uint64
	fanWaiter fanWaiter

	// mu guards the subscriber index. Fan-out holds it for reading while it
	// walks the index; Subscribe, Close and Shutdown hold it for writing.
	mu         sync.RWMutex
	exact      map[string]*group        // guarded by mu; exact selector → subscribers
	patterns   []*group                 // guarded by mu; template and "*" selectors
	patternIdx map[string]*group        // guarded by mu; selector → its entry in patterns
	subs       map[*Subscriber]struct{} // guarded by mu
	claimSets  map[string]*claimSet     // guarded by mu; subscribers' claims, shared by equal ones
	closed     bool                     // guarded by mu

	// last is the last update fanned out; stored with mu held for reading,
	// so a Subscribe holding mu for writing sees exactly the last update it
	// did not receive.
	last atomic.Pointer[Update]
	// lastPublic is the last update fanned out that was not private,
	// stored with last: what a live-only subscriber is told it resumed
	// after, since it may not know of a private one.
	lastPublic atomic.Pointer[Update]

	events  sync.WaitGroup // disconnect subscription events being published
	replays sync.WaitGroup // replays reading their pages
}

// group is the subscribers of one selector.
type group struct {
	sel  *Selector
	subs []*Subscriber // guarded by Hub.mu
	idx  int           // guarded by Hub.mu; position in Hub.patterns (pattern groups)
}

// New returns a hub that fans out every update its store delivers.
func New(cfg Config) (*Hub, error) {
	if cfg.QueueSize < 0 {
		return nil, fmt.Errorf("%w: negative QueueSize %d", ErrInvalidConfig, cfg.QueueSize)
	}
	if cfg.ReplayPageBytes < 0 {
		return nil, fmt.Errorf("%w: negative ReplayPageBytes %d", ErrInvalidConfig, cfg.ReplayPageBytes)
	}
	if cfg.SelectorCacheSize < 0 {
		return nil, fmt.Errorf("%w: negative SelectorCacheSize %d", ErrInvalidConfig, cfg.SelectorCacheSize)
	}
	h := &Hub{
		store:      cfg.Store,
		queueSize:  cfg.QueueSize,
		pageBytes:  cfg.ReplayPageBytes,
		log:        cfg.Logger,
		metrics:    cfg.Metrics,
		subEvents:  cfg.SubscriptionEvents,
		exact:      make(map[string]*group),
		patternIdx: make(map[string]*group),
		subs:       make(map[*Subscriber]struct{}),
		claimSets:  make(map[string]*claimSet),
	}
	if h.store == nil {
		h.store, h.ownStore = NewMemoryStore(MemoryStoreConfig{}), true
	}
	if h.queueSize == 0 {
		h.queueSize = DefaultQueueSize
	}
	if h.pageBytes == 0 {
		h.pageBytes = DefaultPageBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.metrics == nil {
		h.metrics = NopMetrics{}
	}
	h.queueWait, _ = h.metrics.(QueueWaitMetrics)
	size := cfg.SelectorCacheSize
	if size == 0 {
		size = DefaultSelectorCacheSize
	}
	h.selectors = newSelectorCache(size)
	h.matchers = newSelectorCache(size)
	h.fanQueue = make(chan *Update, fanQueueSize)
	h.liveQueue = make(chan *Update, fanQueueSize)
	h.fanDone = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	stop, err := h.store.Subscribe(ctx, func(u *Update) { h.fanQueue <- u })
	cancel()
	if err != nil {
		return nil, fmt.Errorf("hub: subscribe to the store: %w", err)
	}
	h.stopFan = stop
	go h.fanLoop()
	return h, nil
}

// Limits on what a publisher or subscriber names, checked before anything
// is stored. Every store accepts an id, type or topic within them (bolt's
// keys stop at 32 KiB; an id is one).
const (
	// MaxIDLength is the longest update id, in bytes.
	MaxIDLength = 1024
	// MaxTypeLength is the longest event type, in bytes.
	MaxTypeLength = 256
	// MaxTopicLength is the longest topic of an update, in bytes: the
	// longest selector, since a topic is also an exact selector.
	MaxTopicLength = MaxSelectorLength
)

// validateUpdate checks what Publish refuses, with a one-line reason.
func validateUpdate(u *Update) error {
	switch {
	case len(u.Topics) == 0:
		return fmt.Errorf("%w: no topic", ErrInvalidUpdate)
	case slices.Contains(u.Topics, ""):
		return fmt.Errorf("%w: empty topic", ErrInvalidUpdate)
	case strings.HasPrefix(u.ID, "#"):
		return fmt.Errorf("%w: id starts with #", ErrInvalidUpdate)
	case u.ID == EarliestID:
		return fmt.Errorf("%w: id %q is reserved (it asks for the whole history)", ErrInvalidUpdate, EarliestID)
	case u.Retry < 0:
		return fmt.Errorf("%w: negative retry", ErrInvalidUpdate)
	}
	if err := checkName("id", u.ID, MaxIDLength); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidUpdate, err)
	}
	if err := checkName("type", u.Type, MaxTypeLength); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidUpdate, err)
	}
	for _, t := range u.Topics {
		if len(t) > MaxTopicLength {
			return fmt.Errorf("%w: topic of %d bytes, longer than %d", ErrInvalidUpdate, len(t), MaxTopicLength)
		}
	}
	return nil
}

// checkName checks an id or type: at most max bytes of UTF-8 without
// control characters (CR, LF, NUL, the other C0 and C1 codes, DEL) or
// Unicode format characters (bidirectional overrides, zero-width and
// invisible characters, the BOM), which would split a field, be dropped by
// a client, or show one id as another.
func checkName(what, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%s of %d bytes, longer than %d", what, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%s contains the control or format character %U", what, r)
		}
	}
	return nil
}

// Publish validates u, gives it an id ("urn:uuid:…", a UUIDv7: see
// newUpdateID) when it has
// none, appends it to the store and returns its id. When Publish returns
// nil the update is in the history; subscribers get it from the fan-out,
// and a Subscribe made after Publish returns counts it as history.
// u's ID, Seq and Time are set as stored; the hub keeps a copy, so u may be
// reused. An id already retained is accepted (draft-08), stored as a
// ReusedID. Errors: ErrInvalidUpdate (wrapped with the reason),
// ErrHubClosed, or the store's.
func (h *Hub) Publish(ctx context.Context, u *Update) (string, error) {
	start := time.Now()
	if err := validateUpdate(u); err != nil {
		return "", err
	}
	h.mu.RLock()
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return "", ErrHubClosed
	}
	c := copyUpdate(u)
	c.Seq, c.Time = 0, time.Time{}
	if c.ID == "" {
		c.ID = newUpdateID()
	}
	err := h.store.Append(ctx, c)
	if errors.Is(err, ErrDuplicateID) {
		// Draft-08: a reused id is no error. A retry of the very update
		// retained under it (a publisher that lost the answer) is
		// answered as the first attempt was, and stored once; another
		// update is stored under a reserved id naming the id (ReusedID),
		// since the store keeps ids unique: a cursor naming the id finds
		// its first occurrence.
		var retry bool
		if retry, err = h.isRetry(ctx, c); err == nil && !retry {
			wire := c.ID
			c.ID, c.Seq, c.Time = ReusedID(c), 0, time.Time{}
			err = h.store.Append(ctx, c)
			c.ID = wire
			if errors.Is(err, ErrDuplicateID) { // a retry of this very reuse
				err = nil
			}
		}
	}
	if err != nil {
		return "", err
	}
	h.noteAcked(c.Seq)
	u.ID, u.Seq, u.Time = c.ID, c.Seq, c.Time
	h.metrics.Published(time.Since(start))
	return c.ID, nil
}

// isRetry reports whether the update retained under c.ID is c itself
// (same topics, data, type, privacy and retry): two short reads of the
// store, on a duplicate id only.
func (h *Hub) isRetry(ctx context.Context, c *Update) (bool, error) {
	p, err := h.store.After(ctx, Cursor{ID: c.ID}, 1)
	if err != nil || !p.Found || p.Anchor == 0 {
		return false, err
	}
	p, err = h.store.After(ctx, Cursor{Seq: p.Anchor - 1}, 1)
	if err != nil || len(p.Updates) == 0 {
		return false, err
	}
	o := p.Updates[0]
	return o.ID == c.ID && o.Data == c.Data && o.Type == c.Type && o.Private == c.Private &&
		o.Retry == c.Retry && slices.Equal(o.Topics, c.Topics), nil
}

// ReusedID returns the id under which the hub stores u when u.ID is
// already retained: "#", a hash of u's topics, data, type, privacy and
// retry, "#", then u.ID. Publishers' ids never start with "#" (Publish
// refuses them), so it is never a publisher's; the same update reusing
// the id again (a retry) gets the same one, so it is stored once.
// Subscribers see the id it names (WireID), and a cursor naming that id
// resumes after its first occurrence, the one stored under the id itself.
func ReusedID(u *Update) string {
	hsh := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		hsh.Write(n[:])
		io.WriteString(hsh, s)
	}
	field(strconv.Itoa(len(u.Topics)))
	for _, t := range u.Topics {
		field(t)
	}
	field(u.Data)
	field(u.Type)
	field(strconv.FormatBool(u.Private) + " " + strconv.FormatInt(int64(u.Retry), 10))
	sum := hsh.Sum(nil)
	return "#" + hex.EncodeToString(sum[:16]) + "#" + u.ID
}

// WireID returns the id subscribers see for a stored id: the id a
// ReusedID names, else the id itself.
func WireID(stored string) string {
	if len(stored) > 0 && stored[0] == '#' {
		if i := strings.IndexByte(stored[1:], '#'); i >= 0 {
			return stored[i+2:]
		}
	}
	return stored
}

// MaxBatchUpdates bounds the updates of one PublishBatch, so that one call
// cannot hold a store's writer (bolt's transaction, a Redis script) for
// long.
const MaxBatchUpdates = 10_000

// PublishBatch publishes us together: each validated as Publish does and
// given an id when it has none, then appended in one store operation
// (AppendBatch), all or none. On success every u's ID, Seq and Time are
// set as stored, in the slice's order. An update refused, by the hub (an
// invalid update, an id named twice in the batch) or the store (a
// duplicate id), fails the whole batch with a *BatchError naming its
// index; nothing is stored then. Other errors are those of Publish.
func (h *Hub) PublishBatch(ctx context.Context, us []*Update) error {
	start := time.Now()
	if len(us) == 0 {
		return nil
	}
	if len(us) > MaxBatchUpdates {
		return fmt.Errorf("%w: batch of %d updates, more than %d", ErrInvalidUpdate, len(us), MaxBatchUpdates)
	}
	var seen map[string]int // ids given in the batch, to refuse one named twice
	cs := make([]*Update, len(us))
	for i, u := range us {
		if err := validateUpdate(u); err != nil {
			return &BatchError{Index: i, Err: err}
		}
		c := copyUpdate(u)
		c.Seq, c.Time = 0, time.Time{}
		if c.ID == "" {
			c.ID = newUpdateID()
		} else {
			if seen == nil {
				seen = make(map[string]int, len(us))
			}
			if j, dup := seen[c.ID]; dup {
				return &BatchError{Index: i, Err: fmt.Errorf("%w: id also given to update %d of the batch", ErrDuplicateID, j)}
			}
			seen[c.ID] = i
		}
		cs[i] = c
	}
	h.mu.RLock()
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return ErrHubClosed
	}
	if err := AppendBatch(ctx, h.store, cs); err != nil {
		return err
	}
	h.noteAcked(cs[len(cs)-1].Seq)
	took := time.Since(start)
	for i, c := range cs {
		us[i].ID, us[i].Seq, us[i].Time = c.ID, c.Seq, c.Time
		h.metrics.Published(took)
	}
	return nil
}

// noteAcked raises acked to seq, the Seq of an update about to be
// acknowledged (0, a retry stored before, changes nothing).
func (h *Hub) noteAcked(seq uint64) {
	for {
		cur := h.acked.Load()
		if seq <= cur || h.acked.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// maxFanWait bounds how long Subscribe waits for the fan-out to catch up
// with the acknowledged updates: past it (a fan-out far behind, or a store
// that skipped an update), the subscriber registers anyway and receives
// the rest live.
const maxFanWait = time.Second

// fanWaiter wakes the subscribes waiting for the fan-out (awaitFanned).
// fanOut pays one atomic load per update while nobody waits.
type fanWaiter struct {
	waiting atomic.Int32
	mu      sync.Mutex
	ch      chan struct{} // closed and cleared by wake; guarded by mu
}

// wake releases every waiter, to check fanned again.
func (w *fanWaiter) wake() {
	if w.waiting.Load() == 0 {
		return
	}
	w.mu.Lock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
	w.mu.Unlock()
}

// awaitFanned returns once the fan-out has finished with every update
// acknowledged so far, or ctx is done, or maxFanWait has passed. No lock
// is held while it waits.
func (h *Hub) awaitFanned(ctx context.Context) {
	seq := h.acked.Load()
	if h.fanned.Load() >= seq {
		return
	}
	w := &h.fanWaiter
	w.waiting.Add(1)
	defer w.waiting.Add(-1)
	timer := time.NewTimer(maxFanWait)
	defer timer.Stop()
	for {
		w.mu.Lock()
		if w.ch == nil {
			w.ch = make(chan struct{})
		}
		ch := w.ch
		w.mu.Unlock()
		// Checked after taking ch: a fanOut that stores fanned after this
		// load sees waiting > 0 and closes ch.
		if h.fanned.Load() >= seq {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		}
	}
}

// newUpdateID returns the id of an update published without one:
// "urn:uuid:" and a version 7 UUID (RFC 9562): the Unix time in
// milliseconds, then 74 random bits. Ids made later sort after (within a
// millisecond, in any order), so a store's id index (bolt's B+tree)
// inserts them at its end, touching one page per commit rather than one
// random page per update, and evicts from its start.
func newUpdateID() string {
	var b [16]byte
	_, _ = rand.Read(b[6:]) // never fails (crypto/rand, Go 1.24+)
	ms := uint64(time.Now().UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return formatUUIDURN(&b)
}

// formatUUIDURN returns "urn:uuid:" and b in the UUID text form, in one
// allocation.
func formatUUIDURN(b *[16]byte) string {
	const prefix = "urn:uuid:"
	var buf [len(prefix) + 36]byte
	copy(buf[:], prefix)
	out := buf[len(prefix):]
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(buf[:])
}

// updateBox holds a copy of an update with one topic and that topic's
// slice, so the copy costs one allocation.
type updateBox struct {
	u     Update
	topic [1]string
}

// copyUpdate returns a copy of u with its own Topics slice.
func copyUpdate(u *Update) *Update {
	if len(u.Topics) == 1 {
		b := &updateBox{u: *u, topic: [1]string{u.Topics[0]}}
		b.u.Topics = b.topic[:]
		return &b.u
	}
	c := *u
	c.Topics = slices.Clone(u.Topics)
	return &c
}

// Match reports whether topic matches selector, with the selector compiled
// once and cached: for the server's publish authorisation and the
// subscriptions API.
func (h *Hub) Match(selector, topic string) bool {
	return h.selectors.match(selector, topic)
}

// CachedMatcher returns the MatcherSelector for key, compiling it with
// compile (outside the hub's locks) only when the hub does not hold it
// already: subscribers sending the same pattern share one compiled
// matcher, in memory and in compilation. It is bounded as the selector
// cache is (Config.SelectorCacheSize), in its own cache. An error of
// compile is returned and not cached.
func (h *Hub) CachedMatcher(key string, compile func() (Matcher, error)) (*Selector, error) {
	return h.matchers.getFunc("\x00"+key, func() (*Selector, error) {
		m, err := compile()
		if err != nil {
			return nil, err
		}
		return MatcherSelector(key, m), nil
	})
}

// LastEventID returns the id of the last update this hub fanned out, or ""
// when it has fanned out none since New.
func (h *Hub) LastEventID() string {
	if u := h.last.Load(); u != nil {
		return WireID(u.ID)
	}
	return ""
}

// maxEncBuf is the largest encoding buffer fanOut keeps for the next update.
const maxEncBuf = 64 << 10

// encode returns u's wire form: the bytes every subscriber of u shares.
func encode(dst []byte, u *Update) ([]byte, error) {
	e := sse.Event{ID: WireID(u.ID), Type: u.Type, Data: u.Data, Retry: u.Retry}
	return e.AppendTo(dst)
}

// fanLoop fans out the updates the store delivers, in the store's order,
// until Shutdown closes the queue.
func (h *Hub) fanLoop() {
	defer close(h.fanDone)
	for {
		select {
		case u, ok := <-h.fanQueue:
			if !ok {
				return
			}
			h.fanOut(u)
		case u := <-h.liveQueue:
			h.fanOut(u)
		}
	}
}

// fanOut encodes an update from the store once and queues
// the same bytes for every matching subscriber, without blocking on any.
func (h *Hub) fanOut(u *Update) {
	if u.Seq > 0 { // not a live-only update
		defer func() {
			h.fanned.Store(u.Seq)
			h.fanWaiter.wake()
		}()
	}
	enc, err := encode(h.encBuf[:0], u)
	if err != nil {
		h.log.Error("hub: update cannot be encoded; dropped", "id", u.ID, "err", err)
		return
	}
	if cap(enc) <= maxEncBuf {
		h.encBuf = enc[:0]
	} else {
		h.encBuf = nil // a rare big update: leave it to the GC
	}
	// f holds the subscribers' shared copy of enc, made at the first
	// delivery: an update nobody subscribes to costs no allocation.
	var f *fanned
	wake := h.scratch[:0]
	var slow []*Subscriber
	delivered := 0
	deliver := func(subs []*Subscriber) {
		if len(subs) > 0 && f == nil {
			f = &fanned{b: slices.Clone(enc)}
			if h.queueWait != nil {
				f.at = monoNow()
			}
		}
		for _, s := range subs {
			if u.Private && !h.private.allows(s.claims) {
				continue
			}
			switch s.enqueue(u, f) {
			case enqueued:
				delivered++
			case enqueuedWake:
				delivered++
				wake = append(wake, s)
			case enqueueFull:
				slow = append(slow, s)
				wake = append(wake, s)
			}
		}
	}

	if u.Private {
		h.private.reset(u)
	}
	h.mu.RLock()
	if u.Seq > 0 {
		h.last.Store(u)
		if !u.Private {
			h.lastPublic.Store(u)
		}
	}
	for _, t := range u.Topics {
		if g := h.exact[t]; g != nil {
			deliver(g.subs)
		}
	}
	for _, g := range h.patterns {
		if g.sel.MatchAny(u.Topics) {
			deliver(g.subs)
		}
	}
	h.mu.RUnlock()

	for _, s := range slow {
		h.endSlow(s)
	}
	for _, s := range wake {
		if s.notify != nil {
			s.notify()
		}
	}
	clear(wake)
	h.scratch = wake[:0]
	h.metrics.Delivered(delivered)
}

// endSlow unregisters s, which enqueue has just ended as slow (enqueue
// reports that once per subscriber, so it is counted once).
func (h *Hub) endSlow(s *Subscriber) {
	h.mu.Lock()
	h.unregisterLocked(s)
	h.mu.Unlock()
	h.metrics.SubscriberDisconnected(DisconnectSlow)
	h.log.Warn("hub: slow subscriber disconnected", "subscriber", s.ID(),
		"remote_addr", s.remoteAddr, "queue_size", h.queueSize)
	h.publishEventsAsync(s, false)
}

// registerLocked adds s to the index (its claim set already acquired).
func (h *Hub) registerLocked(s *Subscriber) {
	h.subs[s] = struct{}{}
	s.members = make([]membership, 0, len(s.sels))
	for _, sel := range s.sels {
		var g *group
		if sel.Exact() {
			if g = h.exact[sel.raw]; g == nil {
				g = &group{sel: sel}
				h.exact[sel.raw] = g
			}
		} else if g = h.patternIdx[sel.raw]; g == nil {
			g = &group{sel: sel, idx: len(h.patterns)}
			h.patterns = append(h.patterns, g)
			h.patternIdx[sel.raw] = g
		}
		s.members = append(s.members, membership{g: g, i: len(g.subs)})
		g.subs = append(g.subs, s)
	}
}

// unregisterLocked removes s from the index; it reports false when s was
// not registered (already removed).
func (h *Hub) unregisterLocked(s *Subscriber) bool {
	if _, ok := h.subs[s]; !ok {
		return false
	}
	delete(h.subs, s)
	if s.claims != nil {
		h.releaseClaimsLocked(s.claims)
	}
	for _, m := range s.members {
		g := m.g
		last := len(g.subs) - 1
		moved := g.subs[last]
		g.subs[m.i] = moved
		g.subs[last] = nil
		g.subs = g.subs[:last]
		if moved != s {
			for j := range moved.members {
				if moved.members[j].g == g {
					moved.members[j].i = m.i
					break
				}
			}
		}
		if len(g.subs) == 0 {
			h.dropGroupLocked(g)
		} else if cap(g.subs) > 64 && len(g.subs) < cap(g.subs)/4 {
			g.subs = slices.Clip(slices.Clone(g.subs))
		}
	}
	s.members = nil
	return true
}

// dropGroupLocked forgets an empty group.
func (h *Hub) dropGroupLocked(g *group) {
	if g.sel.Exact() {
		delete(h.exact, g.sel.raw)
		return
	}
	delete(h.patternIdx, g.sel.raw)
	last := len(h.patterns) - 1
	moved := h.patterns[last]
	h.patterns[g.idx] = moved
	moved.idx = g.idx
	h.patterns[last] = nil
	h.patterns = h.patterns[:last]
}

// Shutdown ends every subscriber (their Drain returns ErrHubClosed after
// what remains), stops the fan-out, and waits for subscription events being
// published. It returns ctx.Err() if ctx ends first. A memory store the hub
// made itself is closed; a Config.Store is the caller's to close.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return h.waitEvents(ctx)
	}
	h.closed = true
	subs := make([]*Subscriber, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	clear(h.subs)
	clear(h.exact)
	clear(h.patternIdx)
	clear(h.patterns)
	h.patterns = nil
	h.mu.Unlock()

	h.stopFan() // no callback runs after it: the queue can be closed
	close(h.fanQueue)
	select {
	case <-h.fanDone:
	case <-ctx.Done():
	}
	for _, s := range subs {
		if s.end(ErrHubClosed) {
			h.metrics.SubscriberDisconnected(DisconnectShutdown)
			if s.notify != nil {
				s.notify()
			}
		}
	}
	err := h.waitEvents(ctx)
	if rerr := waitGroup(ctx, &h.replays); err == nil { // ended above: they stop
		err = rerr
	}
	if h.ownStore {
		if cerr := h.store.Close(ctx); cerr != nil && !errors.Is(cerr, ErrStoreClosed) && err == nil {
			err = cerr
		}
	}
	return err
}

func (h *Hub) waitEvents(ctx context.Context) error { return waitGroup(ctx, &h.events) }

// waitGroup waits for wg, or returns ctx.Err() when ctx ends first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
