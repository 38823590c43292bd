package compare

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/ssekit/sse"
	gosse "github.com/tmaxmax/go-sse"
)

// goSSEReadConfig lifts go-sse's default 64 KB event limit, which the "big"
// workload's events (64 KiB of data plus a "data:" per line) exceed.
var goSSEReadConfig = &gosse.ReadConfig{MaxEventSize: 1 << 20}

// measure runs op under b.Loop with the stream size as bytes per op, and
// reports per event (events per op): wall time (ns/event), CPU time of the
// whole process (cpu-ns/event, where the platform tells it), allocations
// and bytes allocated.
func measure(b *testing.B, bytesPerOp int, eventsPerOp int, op func()) {
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

// BenchmarkDecode reads each workload from memory into events: ssekit with
// a Decoder, go-sse with sse.Read (its public parsing API), one new
// parser per stream.
func BenchmarkDecode(b *testing.B) {
	for _, w := range benchWorkloads(b) {
		b.Run(w.name+"/lib=ssekit", func(b *testing.B) {
			var r bytes.Reader
			measure(b, len(w.stream), len(w.events), func() {
				r.Reset(w.stream)
				n := 0
				for _, err := range sse.NewDecoder(&r).Events() {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				checkCount(b, n, len(w.events))
			})
		})
		b.Run(w.name+"/lib=go-sse", func(b *testing.B) {
			var r bytes.Reader
			measure(b, len(w.stream), len(w.events), func() {
				r.Reset(w.stream)
				n := 0
				for _, err := range gosse.Read(&r, goSSEReadConfig) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				checkCount(b, n, len(w.events))
			})
		})
	}
}

func checkCount(b *testing.B, got, want int) {
	if got != want {
		b.Fatalf("decoded %d events; want %d", got, want)
	}
}

// BenchmarkEncode writes each workload's events into one reused
// bytes.Buffer, starting from the event's fields (id, type, data):
//   - ssekit: Event.AppendTo into a reused scratch slice, then one Write;
//   - ssekit-WriteTo: Event.WriteTo (allocates its buffer per event);
//   - go-sse: build a Message (ID, Type, AppendData), then Message.WriteTo;
//   - go-sse-prebuilt: Message.WriteTo of Messages built before the timer.
//
// The crlf workload is left out: both encoders write LF line ends.
func BenchmarkEncode(b *testing.B) {
	for _, w := range benchWorkloads(b) {
		if w.name == "crlf" {
			continue
		}
		var out bytes.Buffer
		out.Grow(2 * len(w.stream))
		b.Run(w.name+"/lib=ssekit", func(b *testing.B) {
			var scratch []byte
			measure(b, len(w.stream), len(w.events), func() {
				out.Reset()
				for i := range w.events {
					scratch, _ = w.events[i].AppendTo(scratch[:0])
					out.Write(scratch)
				}
			})
			checkEncoded(b, out.Bytes(), w.stream)
		})
		b.Run(w.name+"/lib=ssekit-WriteTo", func(b *testing.B) {
			measure(b, len(w.stream), len(w.events), func() {
				out.Reset()
				for i := range w.events {
					w.events[i].WriteTo(&out)
				}
			})
			checkEncoded(b, out.Bytes(), w.stream)
		})
		b.Run(w.name+"/lib=go-sse", func(b *testing.B) {
			measure(b, len(w.stream), len(w.events), func() {
				out.Reset()
				for i := range w.events {
					m := goSSEMessage(&w.events[i])
					m.WriteTo(&out)
				}
			})
			checkDecodesTo(b, out.Bytes(), w.events)
		})
		b.Run(w.name+"/lib=go-sse-prebuilt", func(b *testing.B) {
			msgs := make([]*gosse.Message, len(w.events))
			for i := range w.events {
				msgs[i] = goSSEMessage(&w.events[i])
			}
			measure(b, len(w.stream), len(w.events), func() {
				out.Reset()
				for _, m := range msgs {
					m.WriteTo(&out)
				}
			})
			checkDecodesTo(b, out.Bytes(), w.events)
		})
	}
}

// goSSEMessage is ev as a go-sse Message; an empty ID or Type stays unset,
// as ssekit writes no field for it.
func goSSEMessage(ev *sse.Event) *gosse.Message {
	m := &gosse.Message{}
	if ev.ID != "" {
		m.ID = gosse.ID(ev.ID)
	}
	if ev.Type != "" {
		m.Type = gosse.Type(ev.Type)
	}
	m.AppendData(ev.Data)
	return m
}

func checkEncoded(tb testing.TB, got, want []byte) {
	tb.Helper()
	if !bytes.Equal(got, want) {
		tb.Fatalf("encoded %d bytes differ from the workload's %d", len(got), len(want))
	}
}

// checkDecodesTo checks that go-sse's output (which differs from ssekit's
// by a space after each colon) decodes to the workload's events.
func checkDecodesTo(tb testing.TB, stream []byte, want []sse.Event) {
	tb.Helper()
	i := 0
	for ev, err := range sse.NewDecoder(bytes.NewReader(stream)).Events() {
		if err != nil {
			tb.Fatal(err)
		}
		if i >= len(want) || ev.ID != want[i].ID || ev.Data != want[i].Data {
			tb.Fatalf("event %d = %+v; want %+v", i, ev, want[min(i, len(want)-1)])
		}
		i++
	}
	if i != len(want) {
		tb.Fatalf("decoded %d events; want %d", i, len(want))
	}
}

// TestDecodersAgree checks that both libraries read every workload into the
// same events, so the benchmarks compare equal work. (go-sse leaves an
// absent type empty where ssekit, like the browser, says "message".)
func TestDecodersAgree(t *testing.T) {
	for _, w := range benchWorkloads(t) {
		t.Run(w.name, func(t *testing.T) {
			var ours []sse.Event
			for ev, err := range sse.NewDecoder(bytes.NewReader(w.stream)).Events() {
				if err != nil {
					t.Fatal(err)
				}
				ours = append(ours, ev)
			}
			i := 0
			for ev, err := range gosse.Read(bytes.NewReader(w.stream), goSSEReadConfig) {
				if err != nil {
					t.Fatal(err)
				}
				if i >= len(ours) {
					t.Fatalf("go-sse decoded more than ssekit's %d events", len(ours))
				}
				typ := ev.Type
				if typ == "" {
					typ = "message"
				}
				if o := ours[i]; ev.LastEventID != o.ID || typ != o.Type || ev.Data != o.Data {
					t.Fatalf("event %d: go-sse {%q %q %d bytes}; ssekit {%q %q %d bytes}",
						i, ev.LastEventID, typ, len(ev.Data), o.ID, o.Type, len(o.Data))
				}
				i++
			}
			if i != len(ours) || i != len(w.events) {
				t.Fatalf("go-sse %d events, ssekit %d; want %d", i, len(ours), len(w.events))
			}
			t.Logf("%s: %d events, %d bytes", w.name, len(w.events), len(w.stream))
		})
	}
}

var _ io.WriterTo = (*gosse.Message)(nil)
