package urlpattern

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ssekit/sse/hub"
)

// BenchmarkMatchPatterns matches one update's topic against n distinct
// patterns, as fan-out does for pattern subscriptions, beside the same
// count of RFC 6570 templates (hub.Selector): the cost per update grows
// with n, ns/pattern each.
func BenchmarkMatchPatterns(b *testing.B) {
	for _, kind := range []string{"urlpattern", "template"} {
		for _, n := range []int{1, 10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", kind, n), func(b *testing.B) {
				ms := make([]hub.Matcher, n)
				for i := range ms {
					if kind != "template" {
						m, err := New(fmt.Sprintf("https://example.com/%d/books/:id", i), hubURL)
						if err != nil {
							b.Fatal(err)
						}
						ms[i] = m
					} else {
						ms[i] = hub.ParseSelector(fmt.Sprintf("https://example.com/%d/books/{id}", i))
					}
				}
				topic := fmt.Sprintf("https://example.com/%d/books/1234", n/2)
				b.ReportAllocs()
				for b.Loop() {
					matched := 0
					for _, m := range ms {
						if m.Match(topic) {
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
}

// BenchmarkHostileMatch matches the patterns a backtracking engine would
// take exponential time on against near-miss topics of growing length:
// ns/byte stays flat, RE2 does not backtrack.
func BenchmarkHostileMatch(b *testing.B) {
	for i, p := range hostilePatterns {
		m, err := New(p, hubURL)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{100, 1000, 4000} {
			topic := "https://example.com/" + strings.Repeat("a", n) + "!"
			b.Run(fmt.Sprintf("pattern%d/%dB", i, len(topic)), func(b *testing.B) {
				for b.Loop() {
					if m.Match(topic) {
						b.Fatal("near miss matched")
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(topic)), "ns/byte")
			})
		}
	}
}

// BenchmarkCompile compiles patterns of growing length, n named groups
// each: ns/byte stays flat.
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{4, 32, 256} {
		var sb strings.Builder
		sb.WriteString("https://example.com")
		for i := range n {
			fmt.Fprintf(&sb, "/:p%d", i)
		}
		p := sb.String()
		b.Run(fmt.Sprintf("%dB", len(p)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(p, hubURL); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(p)), "ns/byte")
		})
	}
}
