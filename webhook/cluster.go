package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/lease"
)

// Cluster errors, for Cluster implementations to wrap.
var (
	// ErrLeaseHeld is returned by Cluster.Acquire while another node
	// holds the endpoint's lease.
	ErrLeaseHeld = errors.New("webhook: the endpoint's lease is held by another node")
	// ErrLeaseLost is returned by a Lease's Renew and Commit once another
	// node took the endpoint over (or the lease expired): the node must
	// stop delivering. It is lease.ErrLost.
	ErrLeaseLost = lease.ErrLost
)

// Cluster shares the outbox of update events between the hub nodes of a
// cluster (Config.Cluster), in the store they share: for each endpoint a
// lease naming the one node that delivers, the endpoint's cursor in the
// shared stream, its dead letters and its replay queue. The stream itself
// is the outbox: nothing is copied per node. Implementations:
// webhook/natsoutbox (NATS JetStream), webhook/redisoutbox (Redis).
type Cluster interface {
	// Acquire takes the endpoint's lease when no node holds it (wrapping
	// ErrLeaseHeld when one does) and claims the endpoint's shared state,
	// so that an earlier holder can no longer move its cursor.
	Acquire(ctx context.Context, endpoint string) (Lease, error)
	// TTL is how long a lease outlives its holder's last renewal: the
	// most a dead holder delays the endpoint, plus a third of it.
	TTL() time.Duration
	// Counts returns the endpoint's events waiting in its replay queue
	// and its dead letters.
	Counts(ctx context.Context, endpoint string) (replay, dead int, err error)
	// Replay moves at most limit of the endpoint's dead letters, oldest
	// first, to the end of its replay queue; it returns how many it moved
	// and how many are left dead.
	Replay(ctx context.Context, endpoint string, limit int) (n, left int, err error)
}

// Lease is one node's right to deliver an endpoint's update events.
type Lease interface {
	// Renew extends the lease by the TTL: wraps ErrLeaseLost when another
	// node holds it now, or it expired.
	Renew(ctx context.Context) error
	// Unlock releases the lease, if still held.
	Unlock(ctx context.Context) error
	// Taken is when the request that took the lease was sent.
	Taken() time.Time
	// Cursor is the endpoint's position when the lease was taken; false
	// when it has none yet (a new endpoint: it starts at the stream's
	// end).
	Cursor() (Position, bool)
	// Commit moves the cursor to p, only while this lease is the
	// endpoint's latest (compare-and-set): wraps ErrLeaseLost otherwise,
	// and the cursor is left as the new holder wrote it.
	Commit(ctx context.Context, p Position) error
	// Dead records an event (its JSON body) as a dead letter.
	Dead(ctx context.Context, body []byte) error
	// NextReplay returns the head of the replay queue (a nil body when it
	// is empty), DoneReplay removes it once delivered or dead-lettered.
	NextReplay(ctx context.Context) (key string, body []byte, err error)
	DoneReplay(ctx context.Context, key string) error
}

// Position is an endpoint's cursor in the shared stream: the last update
// delivered (or skipped, not wanted).
type Position struct {
	Seq uint64 `json:"seq"`
	ID  string `json:"id"`
}

// clusterCommitEvery is how many events the holder delivers between two
// commits of its cursor (it commits too when caught up and before a
// backoff): what a holder that dies may have delivered that its successor
// sends again, with the same ids.
const clusterCommitEvery = 64

// leadLoop takes d's lease whenever it is free and delivers while it
// holds it, until ctx ends.
func (o *Outbox) leadLoop(ctx context.Context, d *deliverer) {
	defer o.done.Done()
	retry := o.cfg.Cluster.TTL() / 3
	for {
		l, err := o.cfg.Cluster.Acquire(ctx, d.ep.Name)
		switch {
		case err == nil:
			o.log.Info("webhook: this node delivers the endpoint's updates for the cluster", "endpoint", d.ep.Name)
			o.m.leases.WithLabelValues(d.ep.Name).Set(1)
			err = o.lead(ctx, d, l)
			o.m.leases.WithLabelValues(d.ep.Name).Set(0)
			if ctx.Err() == nil {
				o.log.Warn("webhook: this node no longer delivers the endpoint's updates", "endpoint", d.ep.Name, "err", err)
			}
		case !errors.Is(err, ErrLeaseHeld) && ctx.Err() == nil:
			o.log.Warn("webhook: taking the endpoint's lease", "endpoint", d.ep.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

// lead delivers d's updates from the shared stream after the cursor
// while l is held: it returns when the lease is lost (or ctx ends), and
// releases it.
func (o *Outbox) lead(ctx context.Context, d *deliverer, l Lease) error {
	k := lease.Keep(l, o.cfg.Cluster.TTL(), l.Taken())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-k.Lost():
			cancel() // an attempt in flight is abandoned
		case <-ctx.Done():
		}
	}()
	defer func() {
		rctx, rcancel := context.WithTimeout(context.Background(), o.cfg.Cluster.TTL()/3)
		k.Stop(rctx)
		rcancel()
	}()
	pos, ok := l.Cursor()
	if !ok {
		end, err := o.storeEnd(ctx)
		if err != nil {
			return err
		}
		if err := l.Commit(ctx, end); err != nil {
			return err
		}
		pos = end
	}
	committed, sent := pos, 0
	commit := func() error {
		if pos == committed {
			return nil
		}
		if err := l.Commit(ctx, pos); err != nil {
			return err
		}
		committed = pos
		return nil
	}
	t := time.NewTicker(o.cfg.Poll)
	defer t.Stop()
	for first := true; ; first = false {
		for { // dead letters replayed, first
			key, body, err := l.NextReplay(ctx)
			if err != nil {
				return err
			}
			if body == nil {
				break
			}
			if err := o.sendLeased(ctx, d, k, l, body, commit); err != nil {
				return err
			}
			if err := l.DoneReplay(ctx, key); err != nil {
				return err
			}
		}
		from := hub.Cursor{Seq: pos.Seq}
		if first {
			from = hub.Cursor{ID: pos.ID}
		}
		page, err := o.cfg.Store.After(ctx, from, collectorPageBytes)
		if err != nil {
			return err
		}
		if first && !page.Found {
			// The cursor's update is gone: trimmed with everything before
			// it (a gap, when what is left starts after it), or deleted
			// alone by a topic's retention (no gap). Either way the
			// stream goes on after its Seq.
			if len(page.Updates) > 0 && page.Updates[0].Seq > pos.Seq {
				o.m.gaps.Inc()
				o.log.Error("webhook: the endpoint's cursor is no longer in the store's history; events in between are lost", "endpoint", d.ep.Name, "cursor", pos.ID)
			}
			continue
		}
		for _, u := range page.Updates {
			if d.ep.wants(u) {
				body, err := json.Marshal(eventOf(u))
				if err != nil {
					return err
				}
				if err := o.sendLeased(ctx, d, k, l, body, commit); err != nil {
					return err
				}
				sent++
			}
			pos = Position{Seq: u.Seq, ID: u.ID}
			if sent >= clusterCommitEvery {
				if err := commit(); err != nil {
					return err
				}
				sent = 0
			}
		}
		if len(page.Updates) > 0 && !page.End {
			continue
		}
		if err := commit(); err != nil {
			return err
		}
		if len(page.Updates) > 0 {
			continue // NATS cannot tell the end cheaply: the next page is empty
		}
		select {
		case <-ctx.Done():
			return cmp.Or(context.Cause(ctx), ctx.Err())
		case <-d.cwake:
		case <-t.C:
		}
	}
}

// sendLeased delivers one event while k holds the lease, retrying with
// backoff, and dead-letters it after MaxAttempts.
func (o *Outbox) sendLeased(ctx context.Context, d *deliverer, k *lease.Keeper, l Lease, body []byte, commit func() error) error {
	for attempts := 1; ; attempts++ {
		if !k.Valid() { // paused past the lease: another node may deliver now
			return fmt.Errorf("webhook: %s: %w (by this node's clock)", d.ep.Name, ErrLeaseLost)
		}
		err := o.send(ctx, d.ep, body)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			o.m.deliveries.WithLabelValues(d.ep.Name, "ok").Inc()
			return nil
		}
		o.m.deliveries.WithLabelValues(d.ep.Name, "failed").Inc()
		if attempts >= cmp.Or(d.ep.MaxAttempts, o.cfg.MaxAttempts) {
			o.m.dead.WithLabelValues(d.ep.Name, "attempts").Inc()
			o.log.Error("webhook: delivery dead-lettered", "endpoint", d.ep.Name, "attempts", attempts, "err", err, "event", eventID(body))
			return l.Dead(ctx, body)
		}
		if err := commit(); err != nil { // what was delivered is not sent again by a successor
			return err
		}
		o.log.Warn("webhook: delivery failed, retrying", "endpoint", d.ep.Name, "attempt", attempts, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.backoff(attempts)):
		}
	}
}

// storeEnd is the position of the store's last update (zero for an empty
// store): where a new endpoint starts.
func (o *Outbox) storeEnd(ctx context.Context) (Position, error) {
	var end Position
	from := hub.Cursor{}
	for {
		page, err := o.cfg.Store.After(ctx, from, collectorPageBytes)
		if err != nil {
			return end, err
		}
		if n := len(page.Updates); n > 0 {
			u := page.Updates[n-1]
			end = Position{Seq: u.Seq, ID: u.ID}
		}
		if page.End || len(page.Updates) == 0 {
			return end, nil
		}
		from = hub.Cursor{Seq: page.Next}
	}
}
