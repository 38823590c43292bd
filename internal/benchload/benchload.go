// Package benchload is the one set of benchmark workloads and the one way
// to measure them, shared by the root package's benchmarks and by
// bench/compare (a separate module, which imports it through its replace
// directive: an internal package is importable by every package whose path
// starts with github.com/ssekit/sse), so that both measure the same
// streams the same way.
package benchload

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse"
)

// A Workload is a stream and the events it was built from.
type Workload struct {
	Name   string
	Events []sse.Event
	Stream []byte
}

// Workloads are the realistic streams every decode and encode benchmark
// runs, built deterministically: Mercure updates, LLM token deltas, big
// multi-line events, and the Mercure stream with CRLF line ends.
func Workloads(tb testing.TB) []Workload {
	tb.Helper()
	build := func(name string, events []sse.Event, crlf bool) Workload {
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
		return Workload{Name: name, Events: events, Stream: stream}
	}
	return []Workload{
		build("mercure", MercureEvents(1000), false),
		build("llm", LLMEvents(1000), false),
		build("big", BigEvents(16), false),
		build("crlf", MercureEvents(1000), true),
	}
}

// MercureEvents are hub updates as Mercure sends them: a urn:uuid id and a
// small JSON-LD document, about 100 bytes of data.
func MercureEvents(n int) []sse.Event {
	evs := make([]sse.Event, n)
	for i := range evs {
		evs[i] = sse.Event{
			ID:   fmt.Sprintf("urn:uuid:%08x-1b4e-4c2a-9f6d-%012x", i*2654435761%(1<<32), i),
			Data: fmt.Sprintf(`{"@id":"/books/%d","@type":"Book","title":"Book %d","status":"available","stock":%d}`, i, i, i%97),
		}
	}
	return evs
}

// LLMEvents are token deltas as OpenAI-style chat completion streams send
// them: no id, no type, about 150 bytes of JSON per event, and "[DONE]".
func LLMEvents(n int) []sse.Event {
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

// BigEvents carry 64 KiB of multi-line data each (log-like lines of about
// 80 bytes), with an id and a type.
func BigEvents(n int) []sse.Event {
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

// Measure runs op under b.Loop with the stream size as bytes per op, and
// reports per event (events per op): wall time (ns/event), CPU time of the
// whole process (cpu-ns/event, where the platform tells it), allocations
// and bytes allocated.
func Measure(b *testing.B, bytesPerOp int, eventsPerOp int, op func()) {
	b.Helper()
	b.SetBytes(int64(bytesPerOp))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ops := 0
	var cpu0 time.Duration
	var cpuOK bool
	for b.Loop() {
		if ops == 0 {
			// b.Loop started the timer on its first call; start the CPU
			// clock with it.
			cpu0, cpuOK = processCPU()
		}
		op()
		ops++
	}
	cpu1, cpuOK1 := processCPU()
	runtime.ReadMemStats(&after)
	events := float64(ops * eventsPerOp)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	if cpuOK && cpuOK1 {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/events, "cpu-ns/event")
	}
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/events, "allocs/event")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/events, "B/event")
}
