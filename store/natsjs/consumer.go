package natsjs

import (
	"context"
	"errors"
	"fmt"
	"github.com/ssekit/sse/hub"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ssekit/sse/internal/updatecodec"
)

// The consumer that feeds the Subscribe callbacks.
//
// It is an ephemeral pull consumer (one replica, in memory, no acks) read
// from the stream sequence after the last delivered one, and replaced by
// a new one, under a new name and so placed again, whenever it stops
// answering (its NATS node died: no heartbeat, no responders), is
// deleted, or loses a message (a gap in its own delivery sequence).
//
// nats.go's ordered consumer does the same but recreates the consumer
// under the name it gave it at the start of the reset, retrying that
// name forever: when the meta leader placed it on a node that had just
// been killed (a SIGKILLed node is only marked offline after minutes),
// every retry named a consumer whose only replica was gone, and the node
// delivered nothing more until that node came back (the updates lost on
// a survivor in TestClusterKillHubNode).
const (
	// consumerCreateTimeout bounds one creation attempt: a consumer
	// placed on a dead node is never answered for, and the next attempt,
	// under a new name, is placed again.
	consumerCreateTimeout = 5 * time.Second
	// consumerRetryWait is the most time between two creation attempts.
	consumerRetryWait = time.Second
)

// startConsumer creates the first consumer, from stream sequence from,
// retrying until ctx ends, then supervises it in a goroutine of its own
// until Close.
func (s *Store) startConsumer(ctx context.Context, from uint64) error {
	s.replace = make(chan struct{}, 1)
	s.closing = make(chan struct{})
	s.loopDone = make(chan struct{})
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, consumerRetryWait) {
		err := s.newConsumer(ctx, from)
		if err == nil {
			break
		}
		s.log.Debug("natsjs: consumer not created, retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsjs: consumer: %w", err)
		case <-time.After(wait):
		}
	}
	go s.consumerLoop()
	return nil
}

// consumerLoop replaces the consumer each time it is told to, until Close.
func (s *Store) consumerLoop() {
	defer close(s.loopDone)
	for {
		select {
		case <-s.replace:
		case <-s.closing:
			s.stopConsumer()
			return
		}
		s.cmu.Lock()
		lost := s.lost
		s.cmu.Unlock()
		if lost == nil {
			continue // about a consumer already replaced
		}
		s.log.Warn("natsjs: replacing the stream's consumer", "err", lost)
		for wait := 50 * time.Millisecond; ; wait = min(2*wait, consumerRetryWait) {
			s.stopConsumer()
			// From the update after the last one delivered, read with the
			// generation changed under dmu: the old consumer delivers
			// nothing after it.
			s.dmu.Lock()
			s.cmu.Lock()
			s.gen.Add(1)
			s.lost = nil
			from := s.delivered.Load() + 1
			s.cmu.Unlock()
			s.dmu.Unlock()
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-s.closing:
					cancel()
				case <-ctx.Done():
				}
			}()
			err := s.newConsumer(ctx, from)
			cancel()
			if err == nil {
				break
			}
			if s.isClosed.Load() {
				return
			}
			s.log.Debug("natsjs: consumer not created, retrying", "err", err)
			select {
			case <-s.closing:
				return
			case <-time.After(wait):
			}
		}
	}
}

// newConsumer creates a consumer under a new name from stream sequence
// from and starts consuming it for the current generation.
func (s *Store) newConsumer(ctx context.Context, from uint64) error {
	cctx, cancel := context.WithTimeout(ctx, consumerCreateTimeout)
	defer cancel()
	cons, err := s.js.CreateConsumer(cctx, s.stream, jetstream.ConsumerConfig{
		FilterSubject:     s.prefix + "*",
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		AckPolicy:         jetstream.AckNonePolicy,
		Replicas:          1,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		// Unanswered, it may still exist (on a dead node): under an
		// ephemeral name no later attempt reuses, and the server drops
		// it after its InactiveThreshold.
		return err
	}
	name := cons.CachedInfo().Name
	gen := s.gen.Load()
	var last uint64 // the consumer's own sequence of its last message
	handler := func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			s.log.Error("natsjs: message without metadata; skipped", "err", err)
			return
		}
		if md.Sequence.Consumer != last+1 { // a message lost on the way
			s.replaceConsumer(gen, fmt.Errorf("consumer sequence %d after %d", md.Sequence.Consumer, last))
			return
		}
		last = md.Sequence.Consumer
		s.deliver(gen, md.Sequence.Stream, m.Data())
	}
	cc, err := cons.Consume(handler,
		// Short pulls with heartbeats: a consumer lost with a NATS node is
		// noticed in seconds and replaced after the last delivered Seq.
		jetstream.PullExpiry(5*time.Second),
		jetstream.PullHeartbeat(time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if s.isClosed.Load() {
				return
			}
			s.log.Debug("natsjs: consumer", "name", name, "err", err)
			if consumerLost(err) {
				s.replaceConsumer(gen, err)
			}
		}))
	if err != nil {
		s.deleteConsumer(name)
		return err
	}
	s.cmu.Lock()
	s.consumer, s.consumerName = cc, name
	s.cmu.Unlock()
	return nil
}

// consumerLost reports whether the consumer's error means it will deliver
// nothing more: its server is gone or it was deleted.
func consumerLost(err error) bool {
	return errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, nats.ErrNoResponders)
}

// replaceConsumer asks the consumer loop to replace the consumer of
// generation gen, unless it already was.
func (s *Store) replaceConsumer(gen uint64, err error) {
	s.cmu.Lock()
	if gen == s.gen.Load() && s.lost == nil {
		s.lost = err
	}
	s.cmu.Unlock()
	select {
	case s.replace <- struct{}{}:
	default: // the loop is already told
	}
}

// stopConsumer stops the current consumer and deletes it on the server,
// in the background (the server also drops it after its
// InactiveThreshold).
func (s *Store) stopConsumer() {
	s.cmu.Lock()
	cc, name := s.consumer, s.consumerName
	s.consumer, s.consumerName = nil, ""
	s.cmu.Unlock()
	if cc == nil {
		return
	}
	cc.Stop()
	s.deleteConsumer(name)
}

// deleteConsumer deletes a consumer, in the background, bounded.
func (s *Store) deleteConsumer(name string) {
	if s.isClosed.Load() {
		return // the connection is closing
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), consumerCreateTimeout)
		defer cancel()
		_ = s.js.DeleteConsumer(ctx, s.stream, name)
	}()
}

// deliver gives the update at stream sequence seq, from the consumer of
// generation gen, to every callback registered before it, once, in Seq
// order; then, outside the delivery lock, applies the retention rules to
// it (every node the same deletions).
func (s *Store) deliver(gen, seq uint64, data []byte) {
	u, err := updatecodec.Decode(data, seq)
	if s.deliverLocked(gen, seq, u, err) {
		s.retain(u)
	}
}

// deliverLocked delivers u under the delivery lock and reports whether it
// was delivered (from the current consumer, not a repeat, and decoded).
func (s *Store) deliverLocked(gen, seq uint64, u *hub.Update, err error) bool {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if gen != s.gen.Load() { // from a consumer already replaced
		return false
	}
	if seq <= s.delivered.Load() {
		return false
	}
	s.delivered.Store(seq)
	if err != nil {
		s.log.Error("natsjs: undecodable update; skipped", "seq", seq, "err", err)
		return false
	}
	s.subs.Deliver(u)
	return true
}
