package hub

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkSelectorCompile compiles selectors of each shape at growing
// lengths; ns/byte and B/byte stay flat when compile cost is linear in the
// selector's length.
func BenchmarkSelectorCompile(b *testing.B) {
	for _, shape := range []string{"variables", "named", "prefixes", "expressions", "literal"} {
		for _, n := range []int{16, 64, 256} {
			sel := selectorShapes[shape](n)
			b.Run(fmt.Sprintf("%s/%dB", shape, len(sel)), func(b *testing.B) {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				b.ReportAllocs()
				for b.Loop() {
					ParseSelector(sel)
				}
				runtime.ReadMemStats(&after)
				per := float64(b.N * len(sel))
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/byte")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/per, "B/byte")
			})
		}
	}
}

// BenchmarkSelectorMatchPatterns matches one update's topic against n
// distinct templates, as fan-out does for the pattern groups: the cost per
// update grows with n, at ns/pattern each.
func BenchmarkSelectorMatchPatterns(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			sels := make([]*Selector, n)
			for i := range sels {
				sels[i] = ParseSelector(fmt.Sprintf("https://example.com/%d/books/{id}{?q,lang}", i))
			}
			topic := fmt.Sprintf("https://example.com/%d/books/1234?q=go&lang=en", n/2)
			b.ReportAllocs()
			for b.Loop() {
				matched := 0
				for _, s := range sels {
					if s.Match(topic) {
						matched++
					}
				}
				if matched != 1 {
					b.Fatalf("%d matches; want 1", matched)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pattern")
		})
	}
}

// BenchmarkPublishDuringHostileSubscribe measures one publish with its
// authorisation (Hub.Match of the publisher's claim, as the server does)
// while, in "attack", two goroutines keep subscribing with the costliest
// accepted request: 100 distinct templates of MaxTemplateVariables
// variables each, never cached before. "idle" is the same without them.
func BenchmarkPublishDuringHostileSubscribe(b *testing.B) {
	for _, attack := range []bool{false, true} {
		name := "idle"
		if attack {
			name = "attack"
		}
		b.Run(name, func(b *testing.B) {
			h := newHub(b, Config{})
			ctx := context.Background()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var attacks atomic.Int64
			if attack {
				for w := range 2 {
					wg.Go(func() {
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							sels := make([]string, 100)
							for j := range sels {
								sels[j] = fmt.Sprintf("https://example.com/%d/%d/%d/", w, i, j) + hostileTemplate(MaxTemplateVariables, "+")
							}
							s, _, err := h.Subscribe(ctx, SubscribeRequest{Selectors: sels, Notify: func() {}})
							if err != nil {
								panic(err)
							}
							s.Close()
							attacks.Add(1)
						}
					})
				}
			}
			i := 0
			for b.Loop() {
				topic := "https://example.com/books/1"
				if !h.Match("https://example.com/books/{id}", topic) {
					b.Fatal("publisher not authorised")
				}
				if _, err := h.Publish(ctx, &Update{ID: fmt.Sprint(i), Topics: []string{topic}, Data: "x"}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(attacks.Load())/b.Elapsed().Seconds(), "attacks/s")
		})
	}
}

// BenchmarkSelectorRetained keeps 1,000 compiled templates of each shape
// alive and reports the heap they hold per selector beside what Size
// counts for them: the selector cache's byte bound is only as good as
// that estimate.
func BenchmarkSelectorRetained(b *testing.B) {
	for _, shape := range []string{"variables", "named", "expressions", "literal"} {
		b.Run(shape, func(b *testing.B) {
			const n = 1000
			var heap, size float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				keep := make([]*Selector, n)
				for i := range keep {
					keep[i] = ParseSelector(fmt.Sprint(i) + selectorShapes[shape](MaxTemplateVariables))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap += float64(after.HeapInuse - before.HeapInuse)
				for _, s := range keep {
					size += float64(s.Size())
				}
				runtime.KeepAlive(keep)
			}
			b.ReportMetric(heap/float64(b.N*n), "heap-B/selector")
			b.ReportMetric(size/float64(b.N*n), "Size-B/selector")
		})
	}
}
