// Package fanout holds the callbacks of a store's Subscribe (bolt, Redis
// Streams, NATS JetStream): one list, so that the three stores add, remove
// and call them the same way.
//
// Subscribe and stop take a lock; the store's delivery goroutine reads a
// copy of the list without one. stop waits for a call in progress, so once
// it returns the callback is never called again.
package fanout

import (
	"sync"
	"sync/atomic"

	"github.com/ssekit/sse/hub"
)

// List is a set of callbacks. The zero value is an empty list, ready to use.
type List struct {
	mu   sync.Mutex
	subs []*subscriber // guarded by mu

	// view is a copy of subs for Deliver, replaced whole under mu.
	view atomic.Pointer[[]*subscriber]
}

// subscriber is one callback. mu is held while fn runs, so stop can wait for
// a call in progress.
type subscriber struct {
	fn      func(*hub.Update)
	from    uint64 // the first Seq to deliver
	mu      sync.Mutex
	stopped bool // guarded by mu
}

// Add adds fn, to be called by Deliver with the updates whose Seq is from or
// more. stop removes it and waits for a call of fn in progress; it may be
// called more than once, and fn must not call it.
func (l *List) Add(fn func(*hub.Update), from uint64) (stop func()) {
	sub := &subscriber{fn: fn, from: from}
	l.mu.Lock()
	l.subs = append(l.subs, sub)
	l.publishLocked()
	l.mu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			for i, x := range l.subs {
				if x == sub {
					l.subs = append(l.subs[:i:i], l.subs[i+1:]...)
					break
				}
			}
			l.publishLocked()
			l.mu.Unlock()
			sub.mu.Lock() // waits for a call in progress
			sub.stopped = true
			sub.mu.Unlock()
		})
	}
}

// Clear removes every callback, as a store's Close does; their stop
// functions still work.
func (l *List) Clear() {
	l.mu.Lock()
	l.subs = nil
	l.publishLocked()
	l.mu.Unlock()
}

// Deliver calls every callback added before it, and not stopped, with u if
// u.Seq is at least the callback's from. The store calls it from one
// goroutine at a time, in Seq order.
func (l *List) Deliver(u *hub.Update) {
	view := l.view.Load()
	if view == nil {
		return
	}
	for _, sub := range *view {
		sub.deliver(u)
	}
}

func (sub *subscriber) deliver(u *hub.Update) {
	if u.Seq < sub.from {
		return
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if !sub.stopped {
		sub.fn(u)
	}
}

// publishLocked gives Deliver a fresh copy of subs. l.mu must be held.
func (l *List) publishLocked() {
	view := append([]*subscriber(nil), l.subs...)
	l.view.Store(&view)
}
