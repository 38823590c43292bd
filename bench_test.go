package sse_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/internal/benchload"
)

// The workloads and the measurement are internal/benchload, shared with
// bench/compare (which compares ssekit with tmaxmax/go-sse).

// BenchmarkDecode decodes each workload from memory with a new Decoder per
// stream (its 64 KiB read buffer is part of the cost).
func BenchmarkDecode(b *testing.B) {
	for _, w := range benchload.Workloads(b) {
		b.Run(w.Name, func(b *testing.B) {
			var r bytes.Reader
			benchload.Measure(b, len(w.Stream), len(w.Events), func() {
				r.Reset(w.Stream)
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
				if n != len(w.Events) {
					b.Fatalf("decoded %d events; want %d", n, len(w.Events))
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
	for _, w := range benchload.Workloads(b) {
		if w.Name == "crlf" {
			continue
		}
		b.Run(w.Name+"/AppendTo", func(b *testing.B) {
			buf := make([]byte, 0, len(w.Stream))
			benchload.Measure(b, len(w.Stream), len(w.Events), func() {
				buf = buf[:0]
				for i := range w.Events {
					buf, _ = w.Events[i].AppendTo(buf)
				}
			})
		})
		b.Run(w.Name+"/WriteTo", func(b *testing.B) {
			benchload.Measure(b, len(w.Stream), len(w.Events), func() {
				for i := range w.Events {
					if _, err := w.Events[i].WriteTo(io.Discard); err != nil {
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
	for _, w := range benchload.Workloads(t) {
		t.Run(w.Name, func(t *testing.T) {
			d := sse.NewDecoder(bytes.NewReader(w.Stream))
			i := 0
			for ev, err := range d.Events() {
				if err != nil {
					t.Fatal(err)
				}
				want := w.Events[i]
				if want.Type == "" {
					want.Type = "message"
				}
				if ev != want {
					t.Fatalf("event %d = %+v; want %+v", i, ev, want)
				}
				i++
			}
			if i != len(w.Events) {
				t.Fatalf("got %d events; want %d", i, len(w.Events))
			}
		})
	}
}

// TestEventWriteToAllocatesOnce checks that WriteTo sizes its buffer right
// the first time, even when every line of Data needs a "data:" prefix and a
// guard space.
func TestEventWriteToAllocatesOnce(t *testing.T) {
	events := map[string]sse.Event{
		"small":          benchload.MercureEvents(1)[0],
		"big multi-line": benchload.BigEvents(1)[0],
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
