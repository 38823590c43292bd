// Package webhook tells the application what happens in the hub: every
// update published (filtered per endpoint by topic matchers) is POSTed to
// each endpoint, signed (sign.go), at least once and in order per
// endpoint, from a durable outbox.
//
// The outbox is a bolt file of its own (the hub's data directory,
// webhooks.db): a queue bucket per endpoint, a dead-letter bucket per
// endpoint, and the cursor: the id of the last update of the store it has
// queued. The store is the source: publishing only wakes the collector
// (Outbox.Notify, which never blocks), which reads the store's history
// after the cursor and queues the page and the new cursor in one
// transaction. So a publish never waits for the outbox nor for any
// endpoint, and a hub killed before the collector ran queues what it
// missed from the store's history when it starts again (kill -9 loses
// nothing that the history still retains). Each endpoint has one
// deliverer goroutine: it sends the head of its queue until the endpoint
// answers 2xx, with exponential backoff and full jitter, and after
// MaxAttempts moves it to the dead letters (a metric and a log line);
// Replay moves them back.
//
// Duplicates (a delivery acknowledged but not yet removed when the hub
// died) carry the same event id, so a receiver can drop them.
//
// In a cluster (Config.Cluster: the nodes share a NATS or Redis store)
// update events are not copied into the file: the shared stream is the
// outbox. For each endpoint one node at a time holds a lease in the
// shared store and delivers from the endpoint's cursor, kept there too
// and moved only by the lease's holder (cluster.go); when it dies another
// node takes over after the lease's TTL and continues from the cursor.
// Subscription events, which are each node's own, stay in its file.
package webhook

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bbolt "go.etcd.io/bbolt"

	"github.com/ssekit/sse/hub"
)

// Defaults for Config.
const (
	DefaultTimeout           = 10 * time.Second
	DefaultMaxAttempts       = 10
	DefaultMinBackoff        = time.Second
	DefaultMaxBackoff        = 5 * time.Minute
	DefaultPoll              = time.Second
	DefaultMaxPending        = 1_000_000
	collectorPageBytes       = 1 << 20
	EventUpdatePublished     = "update.published"
	EventSubscriptionStarted = "subscription.started"
	EventSubscriptionEnded   = "subscription.ended"
)

// Errors.
var (
	ErrInvalidConfig = errors.New("webhook: invalid config")
	ErrBadSignature  = errors.New("webhook: bad signature")
	ErrNoEndpoint    = errors.New("webhook: no such endpoint")
)

// Endpoint is one receiver.
type Endpoint struct {
	// Name identifies the endpoint's queue; renaming it starts a new one.
	Name string
	// URL receives the POSTs.
	URL string
	// Secrets sign each delivery (several while rotating; the first is
	// the new one). At least one.
	Secrets [][]byte
	// Topics, when not empty, keep only the updates with a topic one of
	// them matches (exact topics or selectors: hub.Matcher).
	Topics []hub.Matcher
	// Private includes private updates (off by default).
	Private bool
	// Subscriptions adds the subscription.started and .ended events
	// (Outbox.WatchSubscriptions), filtered by Topics on the subscribed
	// selector.
	Subscriptions bool
	// Timeout and MaxAttempts, when set, override the Config's for it.
	Timeout     time.Duration
	MaxAttempts int
}

// Config configures an Outbox. Path, Store and Endpoints are required.
type Config struct {
	// Path is the outbox's bolt file.
	Path string
	// Store is the hub's store, the source of the updates.
	Store hub.Store
	// Endpoints are the receivers.
	Endpoints []Endpoint
	// Client sends the deliveries; nil means one of its own (no redirects).
	Client *http.Client
	// Timeout bounds one delivery. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts is how many times a delivery is tried before it is
	// dead-lettered. Zero means DefaultMaxAttempts.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts, doubled
	// each time, with full jitter. Zero means the defaults.
	MinBackoff, MaxBackoff time.Duration
	// Poll is how often the collector reads the store without being
	// notified (updates published on other nodes). Zero means DefaultPoll.
	Poll time.Duration
	// MaxPending bounds each endpoint's queue; events beyond it are
	// dead-lettered at once (metric and log). Zero means DefaultMaxPending.
	MaxPending int
	// Logger gets delivery failures and dead letters; nil: discarded.
	Logger *slog.Logger
	// Registerer gets the metrics; nil: none.
	Registerer prometheus.Registerer
	// Now is the clock for signatures; nil means time.Now.
	Now func() time.Time
	// Cluster, when set, delivers update events from the shared store
	// under a lease per endpoint (see Cluster) instead of from the file,
	// which then keeps only this node's subscription events.
	Cluster Cluster
}

// Event is the JSON body of a delivery.
type Event struct {
	// ID is the event's id, the same on every attempt and after a
	// restart: "update:" and the update's id.
	ID string `json:"id"`
	// Type is EventUpdatePublished.
	Type string `json:"type"`
	// Time is when the store accepted the update.
	Time time.Time `json:"time"`
	// Update is the update published.
	Update *UpdateJSON `json:"update,omitempty"`
	// Subscription is the subscription started or ended (Mercure's
	// subscription JSON: id, subscriber, topic, active, payload).
	Subscription *hub.SubscriptionInfo `json:"subscription,omitempty"`
}

// UpdateJSON is an update as a webhook carries it.
type UpdateJSON struct {
	ID      string   `json:"id"`
	Topics  []string `json:"topics"`
	Type    string   `json:"type,omitempty"`
	Data    string   `json:"data"`
	Private bool     `json:"private,omitempty"`
}

var (
	bucketMeta = []byte("meta")
	keyCursor  = []byte("cursor")
)

func queueBucket(name string) []byte { return []byte("queue/" + name) }
func deadBucket(name string) []byte  { return []byte("dead/" + name) }

// Outbox collects and delivers. Its methods are safe for concurrent use.
type Outbox struct {
	cfg    Config
	db     *bbolt.DB
	client *http.Client
	log    *slog.Logger
	m      *metrics
	wake   chan struct{}
	eps    []*deliverer

	cancel context.CancelFunc
	runCtx context.Context // Run's, ended by Close
	done   sync.WaitGroup
}

type deliverer struct {
	ep    Endpoint
	wake  chan struct{}
	cwake chan struct{} // the cluster deliverer's (Config.Cluster)
	mu    sync.Mutex
	n     int // queued; guarded by mu
}

// Open opens (or creates) the outbox at cfg.Path. Run starts it.
func Open(cfg Config) (*Outbox, error) {
	if cfg.Path == "" || cfg.Store == nil {
		return nil, fmt.Errorf("%w: Path and Store are required", ErrInvalidConfig)
	}
	seen := map[string]bool{}
	for _, ep := range cfg.Endpoints {
		u, err := url.Parse(ep.URL)
		if ep.Name == "" || seen[ep.Name] {
			return nil, fmt.Errorf("%w: endpoint names must be set and unique (%q)", ErrInvalidConfig, ep.Name)
		}
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: endpoint %s: url %q: want http(s)://HOST/PATH", ErrInvalidConfig, ep.Name, ep.URL)
		}
		if len(ep.Secrets) == 0 {
			return nil, fmt.Errorf("%w: endpoint %s: a secret is required", ErrInvalidConfig, ep.Name)
		}
		for _, s := range ep.Secrets {
			if len(s) < 16 {
				return nil, fmt.Errorf("%w: endpoint %s: a secret needs 16 bytes or more", ErrInvalidConfig, ep.Name)
			}
		}
		seen[ep.Name] = true
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setD(&cfg.Timeout, DefaultTimeout)
	setD(&cfg.MinBackoff, DefaultMinBackoff)
	setD(&cfg.MaxBackoff, DefaultMaxBackoff)
	setD(&cfg.Poll, DefaultPoll)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	o := &Outbox{cfg: cfg, client: cfg.Client, log: cfg.Logger, wake: make(chan struct{}, 1)}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.client == nil {
		o.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	var err error
	if o.m, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	db, err := bbolt.Open(cfg.Path, 0o600, &bbolt.Options{Timeout: time.Second, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("webhook: opening %s: %w", cfg.Path, err)
	}
	o.db = db
	err = db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketMeta); err != nil {
			return err
		}
		for _, ep := range cfg.Endpoints {
			q, err := tx.CreateBucketIfNotExists(queueBucket(ep.Name))
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists(deadBucket(ep.Name)); err != nil {
				return err
			}
			o.eps = append(o.eps, &deliverer{ep: ep, wake: make(chan struct{}, 1), cwake: make(chan struct{}, 1), n: q.Stats().KeyN})
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("webhook: %s: %w", cfg.Path, err)
	}
	for _, d := range o.eps {
		o.m.pending(d.ep.Name, d.n)
	}
	return o, nil
}

// Run queues what the store has after the cursor (a new outbox: marks
// the store's end, so it tells of what is published from then on), then
// starts the collector and one deliverer per endpoint, which stop when
// ctx ends or Close is called. With Config.Cluster there is no collector:
// each endpoint gets a deliverer of the file (subscription events) and
// one that delivers updates while it holds the endpoint's lease.
func (o *Outbox) Run(ctx context.Context) error {
	if o.cfg.Cluster != nil {
		ctx, o.cancel = context.WithCancel(ctx)
		o.runCtx = ctx
		o.done.Add(2 * len(o.eps))
		for _, d := range o.eps {
			go o.deliver(ctx, d)
			go o.leadLoop(ctx, d)
		}
		return nil
	}
	if err := o.collectOnce(ctx); err != nil {
		return fmt.Errorf("webhook: reading the store: %w", err)
	}
	ctx, o.cancel = context.WithCancel(ctx)
	o.runCtx = ctx
	o.done.Add(1 + len(o.eps))
	go o.collect(ctx)
	for _, d := range o.eps {
		go o.deliver(ctx, d)
	}
	return nil
}

// Notify wakes the collector (in a cluster, the deliverers of the
// endpoints this node holds): something was published. It never blocks.
func (o *Outbox) Notify() {
	if o.cfg.Cluster != nil {
		for _, d := range o.eps {
			select {
			case d.cwake <- struct{}{}:
			default:
			}
		}
		return
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Close stops the goroutines (an attempt in flight is abandoned and
// retried on the next start) and closes the file.
func (o *Outbox) Close() error {
	if o.cancel != nil {
		o.cancel()
		o.done.Wait()
	}
	return o.db.Close()
}

// collect queues the store's updates after the cursor.
func (o *Outbox) collect(ctx context.Context) {
	defer o.done.Done()
	t := time.NewTicker(o.cfg.Poll)
	defer t.Stop()
	for {
		if err := o.collectOnce(ctx); err != nil && ctx.Err() == nil {
			o.log.Warn("webhook: reading the store", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-t.C:
		}
		// Publishes come in bursts: one read and one transaction (one
		// fsync) for the burst, not one per update.
		select {
		case <-ctx.Done():
			return
		case <-time.After(collectLinger):
		}
	}
}

// collectLinger is how long the collector lets publishes accumulate
// before reading them: what it adds to a webhook's latency.
const collectLinger = 20 * time.Millisecond

// collectOnce reads every page after the cursor; each page and the new
// cursor are one transaction. The first run of a new outbox starts at
// the store's end: it tells of what is published from then on.
func (o *Outbox) collectOnce(ctx context.Context) error {
	var cursor []byte // "=" and the id, so that "" (an empty store's) is not "none"
	o.db.View(func(tx *bbolt.Tx) error {
		cursor = bytes.Clone(tx.Bucket(bucketMeta).Get(keyCursor))
		return nil
	})
	fresh := len(cursor) == 0
	from := hub.Cursor{ID: string(bytes.TrimPrefix(cursor, []byte("=")))}
	for first := true; ; first = false {
		page, err := o.cfg.Store.After(ctx, from, collectorPageBytes)
		if err != nil {
			return err
		}
		if first && !fresh && !page.Found {
			o.m.gaps.Inc()
			o.log.Error("webhook: the outbox's cursor is no longer in the store's history; events in between are lost", "cursor", from.ID)
		}
		if len(page.Updates) == 0 {
			if fresh && first { // an empty store: everything from now on is new
				return o.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyCursor, []byte("=")) })
			}
			return nil
		}
		last := page.Updates[len(page.Updates)-1].ID
		if err := o.queue(page.Updates, last, fresh); err != nil {
			return err
		}
		from = hub.Cursor{Seq: page.Next}
		if page.End {
			return nil
		}
	}
}

// queue adds the updates' events to the endpoints' queues, and the
// cursor (skip: only the cursor).
func (o *Outbox) queue(us []*hub.Update, cursor string, skip bool) error {
	var items []item
	if !skip {
		for _, u := range us {
			body, err := json.Marshal(eventOf(u))
			if err != nil {
				return err
			}
			items = append(items, item{body: body, id: u.ID, wants: func(ep *Endpoint) bool { return ep.wants(u) }})
		}
	}
	return o.put(items, &cursor)
}

// item is one event to queue for the endpoints that want it.
type item struct {
	body  []byte
	id    string // for logs
	wants func(*Endpoint) bool
}

// put queues items (and the cursor, when not nil) in one transaction,
// then wakes the deliverers that got something.
func (o *Outbox) put(items []item, cursor *string) error {
	added := make([]int, len(o.eps))
	err := o.db.Update(func(tx *bbolt.Tx) error {
		if cursor != nil {
			if err := tx.Bucket(bucketMeta).Put(keyCursor, []byte("="+*cursor)); err != nil {
				return err
			}
		}
		for i, d := range o.eps {
			q, dead := tx.Bucket(queueBucket(d.ep.Name)), tx.Bucket(deadBucket(d.ep.Name))
			d.mu.Lock()
			n := d.n
			d.mu.Unlock()
			for _, it := range items {
				if !it.wants(&d.ep) {
					continue
				}
				b := q
				if n+added[i] >= o.cfg.MaxPending {
					b = dead
					o.m.dead.WithLabelValues(d.ep.Name, "overflow").Inc()
					o.log.Error("webhook: queue full, event dead-lettered", "endpoint", d.ep.Name, "id", it.id, "max_pending", o.cfg.MaxPending)
				} else {
					added[i]++
				}
				seq, _ := b.NextSequence()
				if err := b.Put(seqKey(seq), it.body); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, d := range o.eps {
		if added[i] > 0 {
			d.mu.Lock()
			d.n += added[i]
			o.m.pending(d.ep.Name, d.n)
			d.mu.Unlock()
			select {
			case d.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

func (ep *Endpoint) wants(u *hub.Update) bool {
	if u.Private && !ep.Private {
		return false
	}
	if len(ep.Topics) == 0 {
		return true
	}
	for _, m := range ep.Topics {
		for _, t := range u.Topics {
			if m.Match(t) {
				return true
			}
		}
	}
	return false
}

func eventOf(u *hub.Update) Event {
	return Event{ID: "update:" + u.ID, Type: EventUpdatePublished, Time: u.Time,
		Update: &UpdateJSON{ID: u.ID, Topics: u.Topics, Type: u.Type, Data: u.Data, Private: u.Private}}
}

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// deliver sends d's queue head until it is taken, then the next.
func (o *Outbox) deliver(ctx context.Context, d *deliverer) {
	defer o.done.Done()
	t := time.NewTicker(o.cfg.Poll)
	defer t.Stop()
	var (
		after    []byte   // the last key delivered (or dead-lettered)
		acked    [][]byte // delivered, not yet removed from the file
		attempts int
	)
	defer func() { o.remove(d, acked, nil, nil) }() // a clean stop leaves no duplicate
	for ctx.Err() == nil {
		key, body := o.head(d, after)
		if key == nil {
			acked = o.remove(d, acked, nil, nil)
			select {
			case <-ctx.Done():
			case <-d.wake:
			case <-t.C:
			}
			continue
		}
		err := o.send(ctx, d.ep, body)
		if ctx.Err() != nil {
			return
		}
		attempts++
		if err == nil {
			o.m.deliveries.WithLabelValues(d.ep.Name, "ok").Inc()
			after, attempts = key, 0
			if acked = append(acked, key); len(acked) >= ackBatch {
				acked = o.remove(d, acked, nil, nil)
			}
			continue
		}
		o.m.deliveries.WithLabelValues(d.ep.Name, "failed").Inc()
		if max := cmp.Or(d.ep.MaxAttempts, o.cfg.MaxAttempts); attempts >= max {
			o.m.dead.WithLabelValues(d.ep.Name, "attempts").Inc()
			o.log.Error("webhook: delivery dead-lettered", "endpoint", d.ep.Name, "attempts", attempts, "err", err, "event", eventID(body))
			acked = o.remove(d, acked, key, body)
			after, attempts = key, 0
			continue
		}
		acked = o.remove(d, acked, nil, nil) // nothing acknowledged waits behind a failing endpoint
		o.log.Warn("webhook: delivery failed, retrying", "endpoint", d.ep.Name, "attempt", attempts, "err", err)
		wait := o.backoff(attempts)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// ackBatch is how many delivered events are removed from the file in one
// transaction (one fsync). Those of a hub killed in between are sent
// again, with their ids: at least once.
const ackBatch = 256

// backoff is the wait after the nth failed attempt: MinBackoff doubled
// n-1 times, at most MaxBackoff, with full jitter (a random wait in
// [d/2, d]) so endpoints coming back are not hit by every hub at once.
func (o *Outbox) backoff(n int) time.Duration {
	d := o.cfg.MinBackoff
	for i := 1; i < n && d < o.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

func eventID(body []byte) string {
	var e struct {
		ID string `json:"id"`
	}
	json.Unmarshal(body, &e)
	return e.ID
}

// head returns d's first queued event after the key after.
func (o *Outbox) head(d *deliverer, after []byte) (key, body []byte) {
	o.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(queueBucket(d.ep.Name)).Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		key, body = bytes.Clone(k), bytes.Clone(v)
		return nil
	})
	return key, body
}

// remove takes the acked keys off d's queue, and deadKey into the dead
// letters (with its body) when set, in one transaction; it returns acked
// emptied for reuse (kept on failure, to retry).
func (o *Outbox) remove(d *deliverer, acked [][]byte, deadKey, deadBody []byte) [][]byte {
	if len(acked) == 0 && deadKey == nil {
		return acked
	}
	err := o.db.Update(func(tx *bbolt.Tx) error {
		q := tx.Bucket(queueBucket(d.ep.Name))
		if deadKey != nil {
			b := tx.Bucket(deadBucket(d.ep.Name))
			seq, _ := b.NextSequence()
			if err := b.Put(seqKey(seq), deadBody); err != nil {
				return err
			}
			if err := q.Delete(deadKey); err != nil {
				return err
			}
		}
		for _, k := range acked {
			if err := q.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		o.log.Error("webhook: updating the outbox", "endpoint", d.ep.Name, "err", err)
		return acked
	}
	n := len(acked)
	if deadKey != nil {
		n++
	}
	d.mu.Lock()
	d.n -= n
	o.m.pending(d.ep.Name, d.n)
	d.mu.Unlock()
	return acked[:0]
}

// send POSTs one signed delivery; a 2xx is success.
func (o *Outbox) send(ctx context.Context, ep Endpoint, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(ep.Timeout, o.cfg.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	now := o.cfg.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ssekit-webhook")
	req.Header.Set(HeaderID, eventID(body))
	req.Header.Set(HeaderTimestamp, fmt.Sprint(now.Unix()))
	req.Header.Set(HeaderSignature, Sign(now, body, ep.Secrets...))
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// Counts returns an endpoint's queued and dead-lettered events (in a
// cluster: this node's subscription events plus the shared replay queue
// and dead letters).
func (o *Outbox) Counts(name string) (queued, dead int, err error) {
	err = o.db.View(func(tx *bbolt.Tx) error {
		q, d := tx.Bucket(queueBucket(name)), tx.Bucket(deadBucket(name))
		if q == nil {
			return fmt.Errorf("%w: %q", ErrNoEndpoint, name)
		}
		queued, dead = q.Stats().KeyN, d.Stats().KeyN
		return nil
	})
	if err != nil || o.cfg.Cluster == nil {
		return queued, dead, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterAdminTimeout)
	defer cancel()
	r, sd, err := o.cfg.Cluster.Counts(ctx, name)
	return queued + r, dead + sd, err
}

// clusterAdminTimeout bounds an admin request's calls to the shared
// store.
const clusterAdminTimeout = 10 * time.Second

// Replay moves an endpoint's dead letters back to the end of its queue,
// oldest first, and returns how many.
func (o *Outbox) Replay(name string) (int, error) {
	n, _, err := o.ReplayN(name, 0)
	return n, err
}

// ReplayN is Replay of at most limit dead letters (0: all), in one
// transaction; it also returns how many are left dead. In a cluster the
// shared dead letters (of update events) are replayed too, after this
// node's own, within the same limit; whichever node holds the endpoint
// delivers them.
func (o *Outbox) ReplayN(name string, limit int) (n, left int, err error) {
	err = o.db.Update(func(tx *bbolt.Tx) (err error) {
		n, left, err = replayTx(tx, name, limit)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	local := n
	if o.cfg.Cluster != nil && (limit == 0 || n < limit) {
		ctx, cancel := context.WithTimeout(context.Background(), clusterAdminTimeout)
		rest := 0
		if limit > 0 {
			rest = limit - n
		}
		sn, sleft, serr := o.cfg.Cluster.Replay(ctx, name, rest)
		cancel()
		if serr != nil {
			return n, left, serr
		}
		n, left = n+sn, left+sleft
	} else if o.cfg.Cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), clusterAdminTimeout)
		_, sd, serr := o.cfg.Cluster.Counts(ctx, name)
		cancel()
		if serr != nil {
			return n, left, serr
		}
		left += sd
	}
	for _, dl := range o.eps {
		if dl.ep.Name == name {
			dl.mu.Lock()
			dl.n += local
			o.m.pending(dl.ep.Name, dl.n)
			dl.mu.Unlock()
			for _, c := range []chan struct{}{dl.wake, dl.cwake} {
				select {
				case c <- struct{}{}:
				default:
				}
			}
		}
	}
	return n, left, nil
}
