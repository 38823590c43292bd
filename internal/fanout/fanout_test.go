package fanout_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/fanout"
)

// recorder keeps the Seqs a callback got.
type recorder struct {
	mu   sync.Mutex
	seqs []uint64
}

func (r *recorder) fn(u *hub.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = append(r.seqs, u.Seq)
}

func (r *recorder) got() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seqs)
}

func deliver(l *fanout.List, seqs ...uint64) {
	for _, s := range seqs {
		l.Deliver(&hub.Update{Seq: s})
	}
}

func TestListDeliver(t *testing.T) {
	var l fanout.List
	deliver(&l, 1) // no callbacks: nothing to do
	var a, b recorder
	stopA := l.Add(a.fn, 2)
	deliver(&l, 1, 2)
	l.Add(b.fn, 4)
	deliver(&l, 3, 4)
	stopA()
	stopA() // a second stop is harmless
	deliver(&l, 5)
	l.Clear()
	deliver(&l, 6)

	tests := []struct {
		name string
		r    *recorder
		want []uint64
	}{
		{"from 2, stopped after 4", &a, []uint64{2, 3, 4}},
		{"from 4, cleared after 5", &b, []uint64{4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.got(); !slices.Equal(got, tt.want) {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

// TestStopWaitsForCall: once stop returns, the callback is not running
// and is never called again.
func TestStopWaitsForCall(t *testing.T) {
	var l fanout.List
	inCall, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	calls := 0
	stop := l.Add(func(*hub.Update) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			close(inCall)
			<-release
		}
	}, 1)
	delivered := make(chan struct{})
	go func() {
		deliver(&l, 1)
		close(delivered)
	}()
	<-inCall
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("stop returned while the callback was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
	<-delivered
	deliver(&l, 2)
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("callback called %d times; want 1 (none after stop)", calls)
	}
}
