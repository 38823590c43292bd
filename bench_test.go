package sse_test

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/ssekit/sse"
)

// The benchmark workloads: realistic streams, built deterministically. The
// same generator is in bench/compare/workloads_test.go (a separate module
// that compares ssekit with tmaxmax/go-sse); keep the two in sync.

// benchWorkload is a stream and the events it was built from.
type benchWorkload struct {
	name   string
	events []sse.Event
	stream []byte
}

func benchWorkloads(tb testing.TB) []benchWorkload {
	tb.Helper()
	build := func(name string, events []sse.Event, crlf bool) benchWorkload {
		var stream []byte
		for i := range events {
			var err error
			if stream, err = events[i].AppendTo(stream); err != nil {
				tb.Fatal(err)
			}
		}
		if crlf {
			stream = bytes.ReplaceAll(stream, []byte("\n"), []byte("\r\n"))
		}
		return benchWorkload{name: name, events: events, stream: stream}
	}
	return []benchWorkload{
		build("mercure", mercureEvents(1000), false),
		build("llm", llmEvents(1000), false),
		build("big", bigEvents(16), false),
		build("crlf", mercureEvents(1000), true),
	}
}

// mercureEvents are hub updates as Mercure sends them: a urn:uuid id and a
// small JSON-LD document, about 100 bytes of data.
func mercureEvents(n int) []sse.Event {
	evs := make([]sse.Event, n)
	for i := range evs {
		evs[i] = sse.Event{
			ID:   fmt.Sprintf("urn:uuid:%08x-1b4e-4c2a-9f6d-%012x", i*2654435761%(1<<32), i),
			Data: fmt.Sprintf(`{"@id":"/books/%d","@type":"Book","title":"Book %d","status":"available","stock":%d}`, i, i, i%97),
		}
	}
	return evs
}

// llmEvents are token deltas as OpenAI-style chat completion streams send
// them: no id, no type, about 150 bytes of JSON per event, and "[DONE]".
func llmEvents(n int) []sse.Event {
	words := strings.Fields("The quick brown fox jumps over the lazy dog while streaming tokens one at a time")
	evs := make([]sse.Event, n)
	for i := range n - 1 {
		evs[i] = sse.Event{Data: fmt.Sprintf(
			`{"id":"chatcmpl-9x2Kf7Qb","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" %s"}}]}`,
			words[i%len(words)])}
	}
	evs[n-1] = sse.Event{Data: "[DONE]"}
	return evs
}

// bigEvents carry 64 KiB of multi-line data each (log-like lines of about
// 80 bytes), with an id and a type.
func bigEvents(n int) []sse.Event {
	var sb strings.Builder
	for line := 0; sb.Len() < 64<<10; line++ {
		fmt.Fprintf(&sb, "2025-11-24T12:00:%02d.%03dZ INFO worker=%02d request handled in %4dus status=200\n",
			line%60, line%1000, line%16, line*37%10000)
	}
	data := strings.TrimSuffix(sb.String()[:64<<10], "\n")
	evs := make([]sse.Event, n)
	for i := range evs {
		evs[i] = sse.Event{ID: fmt.Sprint(i + 1), Type: "log", Data: data}
	}
	return evs
}

// measure runs op under b.Loop with the stream size as bytes per op, and
// reports ns, allocations and bytes allocated per event (events per op).
func measure(b *testing.B, bytesPerOp int, eventsPerOp int, op func()) {
	b.Helper()
	b.SetBytes(int64(bytesPerOp))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ops := 0
	for b.Loop() {
		op()
		ops++
	}
	runtime.ReadMemStats(&after)
	events := float64(ops * eventsPerOp)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/events, "allocs/event")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/events, "B/event")
}

// BenchmarkDecode decodes each workload from memory with a new Decoder per
// stream (its 64 KiB read buffer is part of the cost).
func BenchmarkDecode(b *testing.B) {
	for _, w := range benchWorkloads(b) {
		b.Run(w.name, func(b *testing.B) {
			var r bytes.Reader
			measure(b, len(w.stream), len(w.events), func() {
				r.Reset(w.stream)
				d := sse.NewDecoder(&r)
				n := 0
				for {
					_, err := d.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != len(w.events) {
					b.Fatalf("decoded %d events; want %d", n, len(w.events))
				}
			})
		})
	}
}

// BenchmarkEncode encodes each workload's events: AppendTo into one reused
// buffer (the hub's path: encode once, write the bytes to every
// subscriber), and WriteTo, which allocates its buffer per event. The crlf
// workload is left out: the encoder writes LF line ends.
func BenchmarkEncode(b *testing.B) {
	for _, w := range benchWorkloads(b) {
		if w.name == "crlf" {
			continue
		}
		b.Run(w.name+"/AppendTo", func(b *testing.B) {
			buf := make([]byte, 0, len(w.stream))
			measure(b, len(w.stream), len(w.events), func() {
				buf = buf[:0]
				for i := range w.events {
					buf, _ = w.events[i].AppendTo(buf)
				}
			})
		})
		b.Run(w.name+"/WriteTo", func(b *testing.B) {
			measure(b, len(w.stream), len(w.events), func() {
				for i := range w.events {
					if _, err := w.events[i].WriteTo(io.Discard); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// TestBenchWorkloadsRoundTrip keeps the benchmarks honest: each workload
// decodes back to the events it was built from.
func TestBenchWorkloadsRoundTrip(t *testing.T) {
	for _, w := range benchWorkloads(t) {
		t.Run(w.name, func(t *testing.T) {
			d := sse.NewDecoder(bytes.NewReader(w.stream))
			i := 0
			for ev, err := range d.Events() {
				if err != nil {
					t.Fatal(err)
				}
				want := w.events[i]
				if want.Type == "" {
					want.Type = "message"
				}
				if ev != want {
					t.Fatalf("event %d = %+v; want %+v", i, ev, want)
				}
				i++
			}
			if i != len(w.events) {
				t.Fatalf("got %d events; want %d", i, len(w.events))
			}
		})
	}
}

// TestEventWriteToAllocatesOnce checks that WriteTo sizes its buffer right
// the first time, even when every line of Data needs a "data:" prefix and a
// guard space.
func TestEventWriteToAllocatesOnce(t *testing.T) {
	events := map[string]sse.Event{
		"small":          mercureEvents(1)[0],
		"big multi-line": bigEvents(1)[0],
		"all breaks":     {ID: " x", Type: " y", Data: strings.Repeat("\r\n\r\n", 1000), Retry: 1<<63 - 1},
		"spaced lines":   {Data: strings.Repeat(" a\r", 1000), HasRetry: true},
	}
	for name, ev := range events {
		t.Run(name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(10, func() {
				if _, err := ev.WriteTo(io.Discard); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 1 {
				t.Errorf("WriteTo allocated %v times; want 1", allocs)
			}
		})
	}
}
