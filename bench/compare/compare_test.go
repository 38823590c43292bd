package compare

import (
	"bytes"
	"io"
	"testing"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/internal/benchload"
	gosse "github.com/tmaxmax/go-sse"
)

// goSSEReadConfig lifts go-sse's default 64 KB event limit, which the "big"
// workload's events (64 KiB of data plus a "data:" per line) exceed.
var goSSEReadConfig = &gosse.ReadConfig{MaxEventSize: 1 << 20}

// BenchmarkDecode reads each workload from memory into events: ssekit with
// a Decoder, go-sse with sse.Read (its public parsing API), one new
// parser per stream.
func BenchmarkDecode(b *testing.B) {
	for _, w := range benchload.Workloads(b) {
		b.Run(w.Name+"/lib=ssekit", func(b *testing.B) {
			var r bytes.Reader
			benchload.Measure(b, len(w.Stream), len(w.Events), func() {
				r.Reset(w.Stream)
				n := 0
				for _, err := range sse.NewDecoder(&r).Events() {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				checkCount(b, n, len(w.Events))
			})
		})
		b.Run(w.Name+"/lib=go-sse", func(b *testing.B) {
			var r bytes.Reader
			benchload.Measure(b, len(w.Stream), len(w.Events), func() {
				r.Reset(w.Stream)
				n := 0
				for _, err := range gosse.Read(&r, goSSEReadConfig) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				checkCount(b, n, len(w.Events))
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
	for _, w := range benchload.Workloads(b) {
		if w.Name == "crlf" {
			continue
		}
		var out bytes.Buffer
		out.Grow(2 * len(w.Stream))
		b.Run(w.Name+"/lib=ssekit", func(b *testing.B) {
			var scratch []byte
			benchload.Measure(b, len(w.Stream), len(w.Events), func() {
				out.Reset()
				for i := range w.Events {
					scratch, _ = w.Events[i].AppendTo(scratch[:0])
					out.Write(scratch)
				}
			})
			checkEncoded(b, out.Bytes(), w.Stream)
		})
		b.Run(w.Name+"/lib=ssekit-WriteTo", func(b *testing.B) {
			benchload.Measure(b, len(w.Stream), len(w.Events), func() {
				out.Reset()
				for i := range w.Events {
					w.Events[i].WriteTo(&out)
				}
			})
			checkEncoded(b, out.Bytes(), w.Stream)
		})
		b.Run(w.Name+"/lib=go-sse", func(b *testing.B) {
			benchload.Measure(b, len(w.Stream), len(w.Events), func() {
				out.Reset()
				for i := range w.Events {
					m := goSSEMessage(&w.Events[i])
					m.WriteTo(&out)
				}
			})
			checkDecodesTo(b, out.Bytes(), w.Events)
		})
		b.Run(w.Name+"/lib=go-sse-prebuilt", func(b *testing.B) {
			msgs := make([]*gosse.Message, len(w.Events))
			for i := range w.Events {
				msgs[i] = goSSEMessage(&w.Events[i])
			}
			benchload.Measure(b, len(w.Stream), len(w.Events), func() {
				out.Reset()
				for _, m := range msgs {
					m.WriteTo(&out)
				}
			})
			checkDecodesTo(b, out.Bytes(), w.Events)
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
	for _, w := range benchload.Workloads(t) {
		t.Run(w.Name, func(t *testing.T) {
			var ours []sse.Event
			for ev, err := range sse.NewDecoder(bytes.NewReader(w.Stream)).Events() {
				if err != nil {
					t.Fatal(err)
				}
				ours = append(ours, ev)
			}
			i := 0
			for ev, err := range gosse.Read(bytes.NewReader(w.Stream), goSSEReadConfig) {
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
			if i != len(ours) || i != len(w.Events) {
				t.Fatalf("go-sse %d events, ssekit %d; want %d", i, len(ours), len(w.Events))
			}
			t.Logf("%s: %d events, %d bytes", w.Name, len(w.Events), len(w.Stream))
		})
	}
}

var _ io.WriterTo = (*gosse.Message)(nil)
