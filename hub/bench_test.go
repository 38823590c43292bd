package hub

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkFanOut publishes one update (through the memory store) to n
// subscribers of its topic and drains them every 16 updates, as a server
// coalescing writes would. ns/delivery is the cost per subscriber reached;
// allocs/op is per published update, whatever n.
func BenchmarkFanOut(b *testing.B) {
	data := strings.Repeat("x", 100)
	for _, n := range []int{1_000, 10_000} {
		for _, kind := range []string{"exact", "template"} {
			b.Run(fmt.Sprintf("%s/%d", kind, n), func(b *testing.B) {
				h := newHub(b, Config{})
				sel := "https://example.com/t"
				if kind == "template" {
					sel = "https://example.com/{x}"
				}
				subs := make([]*Subscriber, n)
				for i := range subs {
					s, _, err := h.Subscribe(context.Background(), SubscribeRequest{Selectors: []string{sel}, Notify: func() {}})
					if err != nil {
						b.Fatal(err)
					}
					subs[i] = s
				}
				buf := make([]byte, 0, 64<<10)
				drain := func() {
					for _, s := range subs {
						var err error
						if buf, err = s.Drain(buf[:0]); err != nil {
							b.Fatal(err)
						}
					}
				}
				ctx := context.Background()
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					u := &Update{ID: fmt.Sprint(i), Topics: []string{"https://example.com/t"}, Data: data}
					if _, err := h.Publish(ctx, u); err != nil {
						b.Fatal(err)
					}
					if i++; i%16 == 0 {
						drain()
					}
				}
				drain()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
			})
		}
	}
}

// BenchmarkPublish measures Publish with the memory store and no
// subscriber: validation, id generation, Append and the fan-out's encoding.
func BenchmarkPublish(b *testing.B) {
	h := newHub(b, Config{})
	ctx := context.Background()
	data := strings.Repeat("x", 100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Publish(ctx, &Update{Topics: []string{"https://example.com/t"}, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishAmongOthers publishes to a topic with one subscriber
// while n others listen to other topics: the exact-selector index makes the
// cost independent of n.
func BenchmarkPublishAmongOthers(b *testing.B) {
	for _, n := range []int{1_000, 50_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			h := newHub(b, Config{})
			var target *Subscriber
			for i := range n {
				s, _, err := h.Subscribe(context.Background(), SubscribeRequest{Selectors: []string{fmt.Sprintf("https://example.com/t/%d", i)}})
				if err != nil {
					b.Fatal(err)
				}
				if i == 0 {
					target = s
				}
			}
			ctx := context.Background()
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Publish(ctx, &Update{Topics: []string{"https://example.com/t/0"}, Data: "x"}); err != nil {
					b.Fatal(err)
				}
				var err error
				if buf, err = target.Drain(buf[:0]); err != nil || len(buf) == 0 {
					b.Fatalf("Drain: %d bytes, %v", len(buf), err)
				}
			}
		})
	}
}

// BenchmarkIdleSubscriberMemory reports the heap an idle subscriber holds
// in the hub (not counting its connection), for 10,000 subscribers: each on
// its own exact topic, all on one template, and each after it received
// and drained one update (its queue is then allocated).
func BenchmarkIdleSubscriberMemory(b *testing.B) {
	const n = 10_000
	for _, kind := range []string{"exact", "template", "after-one-update"} {
		b.Run(kind, func(b *testing.B) {
			var perSub float64
			for b.Loop() {
				h, err := New(Config{})
				if err != nil {
					b.Fatal(err)
				}
				subs := make([]*Subscriber, n)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for i := range subs {
					sel := fmt.Sprintf("https://example.com/t/%d", i)
					if kind == "template" {
						sel = "https://example.com/t/{id}"
					}
					subs[i], _, err = h.Subscribe(context.Background(), SubscribeRequest{
						Selectors:  []string{sel},
						RemoteAddr: "192.0.2.1:54321",
						Notify:     func() {},
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				if kind == "after-one-update" {
					if _, err := h.Publish(context.Background(), &Update{Topics: []string{"https://example.com/t/{id}"}, Data: "x"}); err != nil {
						b.Fatal(err)
					}
					for i := range subs {
						if _, err := h.Publish(context.Background(), &Update{Topics: []string{fmt.Sprintf("https://example.com/t/%d", i)}, Data: "x"}); err != nil {
							b.Fatal(err)
						}
						_, _ = subs[i].Drain(nil)
					}
					// The history holds the updates: measure without it.
					h.store.(*MemoryStore).Close(context.Background())
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSub = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
				runtime.KeepAlive(subs)
				_ = h.Shutdown(context.Background())
			}
			b.ReportMetric(perSub, "B/subscriber")
		})
	}
}

// BenchmarkStalledReplayMemory reports the heap that 10 subscribers
// resuming from "earliest" hold while they never drain (stalled clients),
// against the history's size (updates of 1 KiB; the history itself, in the
// memory store, is not counted): flat, about one replay page each.
func BenchmarkStalledReplayMemory(b *testing.B) {
	const subscribers = 10
	data := strings.Repeat("x", 1024)
	for _, n := range []int{1_000, 10_000, 50_000} {
		b.Run(fmt.Sprintf("history=%d", n), func(b *testing.B) {
			store := NewMemoryStore(MemoryStoreConfig{MaxUpdates: n, MaxBytes: 1 << 30})
			defer store.Close(context.Background())
			h, err := New(Config{Store: store})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Shutdown(context.Background())
			for range n {
				if _, err := h.Publish(context.Background(), &Update{Topics: []string{"https://example.com/t"}, Data: data}); err != nil {
					b.Fatal(err)
				}
			}
			var perSub float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				subs := make([]*Subscriber, subscribers)
				for i := range subs {
					subs[i], _, err = h.Subscribe(context.Background(), SubscribeRequest{
						Selectors: []string{"*"}, LastEventID: EarliestID, Notify: func() {},
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSub = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / subscribers
				for _, s := range subs {
					s.Close()
				}
			}
			b.ReportMetric(perSub/(1<<10), "KiB/subscriber")
			b.ReportMetric(float64(n)*float64(len(data))/(1<<20), "MiB-history")
		})
	}
}

// BenchmarkPrivateFanOut measures fanning out one private update with many
// topics to 1,000 subscribers (on "*") whose claims match none of them: the
// cost of deciding, for each, that it may not receive it. "shared" gives
// every subscriber the same ten claims (one token for all), "distinct"
// gives each its own claim (a token per user), half templates.
func BenchmarkPrivateFanOut(b *testing.B) {
	const subscribers = 1000
	for _, topics := range []int{100, 10_000} {
		for _, claims := range []string{"shared", "distinct"} {
			b.Run(fmt.Sprintf("topics=%d/claims=%s", topics, claims), func(b *testing.B) {
				h, err := New(Config{})
				if err != nil {
					b.Fatal(err)
				}
				defer h.Shutdown(context.Background())
				shared := make([]string, 10)
				for i := range shared {
					shared[i] = fmt.Sprintf("https://example.com/claims/%d", i)
					if i%2 == 1 {
						shared[i] += "/{id}"
					}
				}
				for i := range subscribers {
					c := &Claims{Subscribe: shared}
					if claims == "distinct" {
						c = &Claims{Subscribe: []string{fmt.Sprintf("https://example.com/users/%d", i)}}
						if i%2 == 1 {
							c.Subscribe[0] += "/{id}"
						}
					}
					if _, _, err := h.Subscribe(context.Background(), SubscribeRequest{Selectors: []string{"*"}, Claims: c, Notify: func() {}}); err != nil {
						b.Fatal(err)
					}
				}
				u := &Update{ID: "p", Private: true, Data: "x"}
				for i := range topics {
					u.Topics = append(u.Topics, fmt.Sprintf("https://example.com/books/%d", i))
				}
				seq := uint64(0)
				b.ReportAllocs()
				for b.Loop() {
					seq++
					u.Seq = seq
					h.fanOut(u)
				}
			})
		}
	}
}
