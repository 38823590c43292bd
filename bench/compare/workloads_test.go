package compare

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ssekit/sse"
)

// The workloads: a copy of the generator in ../../bench_test.go (keep the
// two in sync), so both modules measure the same streams.

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
