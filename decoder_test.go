package sse_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse"
)

type decoded struct {
	events      []sse.Event
	comments    []string
	lastEventID string
	retry       time.Duration
	hasRetry    bool
	err         error
}

func decodeAll(r io.Reader) decoded {
	var out decoded
	d := sse.NewDecoder(r)
	d.OnComment = func(c string) { out.comments = append(out.comments, c) }
	for ev, err := range d.Events() {
		if err != nil {
			out.err = err
			break
		}
		out.events = append(out.events, ev)
	}
	out.lastEventID = d.LastEventID()
	out.retry, out.hasRetry = d.Retry()
	return out
}

func TestDecoderVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		for _, chunk := range []int{0, 1, 2, 3} {
			t.Run(fmt.Sprintf("%s/chunk=%d", v.Name, chunk), func(t *testing.T) {
				var r io.Reader = strings.NewReader(v.Input)
				if chunk > 0 {
					r = &chunkReader{data: []byte(v.Input), n: chunk}
				}
				got := decodeAll(r)
				checkVector(t, v, got)
			})
		}
	}
}

func checkVector(t *testing.T, v vector, got decoded) {
	t.Helper()
	if got.err != nil {
		t.Fatalf("error: %v", got.err)
	}
	if len(got.events) != len(v.Events) {
		t.Fatalf("got %d events; want %d (%s)", len(got.events), len(v.Events), v.Note)
	}
	for i, want := range v.Events {
		ev := got.events[i]
		if ev.Type != want.Type || ev.Data != want.Data || ev.ID != want.ID {
			t.Errorf("event %d = {type %q data %q id %q}; want {type %q data %q id %q}",
				i, ev.Type, ev.Data, ev.ID, want.Type, want.Data, want.ID)
		}
	}
	if got.lastEventID != v.LastEventID {
		t.Errorf("last event ID = %q; want %q", got.lastEventID, v.LastEventID)
	}
	switch {
	case v.Retry == nil && got.hasRetry:
		t.Errorf("retry = %v; want none", got.retry)
	case v.Retry != nil && (!got.hasRetry || got.retry != time.Duration(*v.Retry)*time.Millisecond):
		t.Errorf("retry = %v (set %v); want %dms", got.retry, got.hasRetry, *v.Retry)
	}
}

// TestDecoderRules names each parsing rule of the WHATWG standard
// (R1–R13 in ../shared/reference/sse-spec-rules.md) with cases beyond the
// shared vectors. Each input runs whole and in 1-byte reads.
func TestDecoderRules(t *testing.T) {
	type ev struct{ typ, data, id string }
	tests := []struct {
		rule, name string
		input      string
		want       []ev
		lastID     string
		retry      time.Duration // -1: none
		comments   []string
	}{
		{"R1", "invalid utf8 becomes U+FFFD per maximal subpart", "data: a\xffb\xe2\x82c\xf0\x9f\n\n",
			[]ev{{"message", "a\ufffdb\ufffdc\ufffd", ""}}, "", -1, nil},
		{"R1", "surrogate encoding is three replacements", "data:\xed\xa0\x80\n\n",
			[]ev{{"message", "\ufffd\ufffd\ufffd", ""}}, "", -1, nil},
		{"R1", "charset ignored, multibyte kept", "data: h\u00e9llo \u4e16\n\n", []ev{{"message", "h\u00e9llo \u4e16", ""}}, "", -1, nil},
		{"R1", "one BOM stripped", "\ufeffdata: a\n\n", []ev{{"message", "a", ""}}, "", -1, nil},
		{"R1", "BOM later is content", "data: a\n\n\ufeffdata: b\n\n", []ev{{"message", "a", ""}}, "", -1, nil},
		{"R1", "BOM in value kept", "data:\ufeffx\n\n", []ev{{"message", "\ufeffx", ""}}, "", -1, nil},
		{"R1", "partial BOM is content", "\xef\xbbdata: a\n\ndata: b\n\n", []ev{{"message", "b", ""}}, "", -1, nil},
		{"R2", "CRLF", "data: a\r\ndata: b\r\n\r\n", []ev{{"message", "a\nb", ""}}, "", -1, nil},
		{"R2", "CR", "data: a\rdata: b\r\r", []ev{{"message", "a\nb", ""}}, "", -1, nil},
		{"R2", "mixed", "data: a\r\ndata: b\rdata: c\n\r\n", []ev{{"message", "a\nb\nc", ""}}, "", -1, nil},
		{"R2", "LF CR is two line ends", "data: a\n\r", []ev{{"message", "a", ""}}, "", -1, nil},
		{"R3", "blank line dispatches each event", "data: 1\n\ndata: 2\n\n", []ev{{"message", "1", ""}, {"message", "2", ""}}, "", -1, nil},
		{"R3", "extra blank lines dispatch nothing", "\n\n\ndata: 1\n\n\n\n", []ev{{"message", "1", ""}}, "", -1, nil},
		{"R4", "comments reported, not dispatched", ": one\n:two\n:\ndata: x\n\n",
			[]ev{{"message", "x", ""}}, "", -1, []string{" one", "two", ""}},
		{"R5", "only one space stripped", "data:  two\n\n", []ev{{"message", " two", ""}}, "", -1, nil},
		{"R5", "tab kept", "data:\tx\n\n", []ev{{"message", "\tx", ""}}, "", -1, nil},
		{"R5", "split at first colon", "data: a:b: c\n\n", []ev{{"message", "a:b: c", ""}}, "", -1, nil},
		{"R6", "data alone appends empty line", "data\ndata\n\n", []ev{{"message", "\n", ""}}, "", -1, nil},
		{"R6", "id alone resets", "id: 1\ndata: a\n\nid\ndata: b\n\n", []ev{{"message", "a", "1"}, {"message", "b", ""}}, "", -1, nil},
		{"R7", "case-sensitive names", "Data: a\nDATA: b\nEvent: x\ndata: c\n\n", []ev{{"message", "c", ""}}, "", -1, nil},
		{"R7", "leading space in name", " data: a\ndata: b\n\n", []ev{{"message", "b", ""}}, "", -1, nil},
		{"R8", "one trailing LF removed", "data: a\ndata:\ndata:\n\n", []ev{{"message", "a\n\n", ""}}, "", -1, nil},
		{"R8", "empty data dispatches empty string", "data:\n\n", []ev{{"message", "", ""}}, "", -1, nil},
		{"R9", "type set and reset", "event: x\ndata: 1\n\ndata: 2\n\n", []ev{{"x", "1", ""}, {"message", "2", ""}}, "", -1, nil},
		{"R9", "empty type is message", "event:\ndata: 1\n\n", []ev{{"message", "1", ""}}, "", -1, nil},
		{"R9", "type reset by non-dispatching blank line", "event: x\n\ndata: 1\n\n", []ev{{"message", "1", ""}}, "", -1, nil},
		{"R9", "last event field wins", "event: a\nevent: b\ndata: 1\n\n", []ev{{"b", "1", ""}}, "", -1, nil},
		{"R10", "NUL id ignored keeps previous", "id: 1\ndata: a\n\nid: x\x00\ndata: b\n\n", []ev{{"message", "a", "1"}, {"message", "b", "1"}}, "1", -1, nil},
		{"R10", "empty id resets", "id: 1\ndata: a\n\nid:\ndata: b\n\n", []ev{{"message", "a", "1"}, {"message", "b", ""}}, "", -1, nil},
		{"R10", "id kept with spaces inside", "id: a b \ndata: x\n\n", []ev{{"message", "x", "a b "}}, "a b ", -1, nil},
		{"R11", "leading zeros", "retry: 0050\n\n", nil, "", 50 * time.Millisecond, nil},
		{"R11", "zero valid", "retry: 0\n\n", nil, "", 0, nil},
		{"R11", "sign refused", "retry: +5\nretry: -5\nretry: 5.0\nretry:  5\n\n", nil, "", -1, nil},
		{"R11", "no blank line needed", "retry: 7\n", nil, "", 7 * time.Millisecond, nil},
		{"R11", "huge value clamped not wrapped", "retry: 99999999999999999999999\n\n", nil, "", time.Duration(1<<63 - 1).Truncate(time.Millisecond), nil},
		{"R12", "id-only block sets last id", "id: 3\n\n", nil, "3", -1, nil},
		{"R12", "event-only block dispatches nothing", "event: x\n\n", nil, "", -1, nil},
		{"R13", "unterminated block discarded", "id: 1\ndata: a", nil, "", -1, nil},
		{"R13", "terminated line without blank discarded", "data: a\n", nil, "", -1, nil},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1} {
			t.Run(fmt.Sprintf("%s/%s/chunk=%d", tt.rule, tt.name, chunk), func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.input)
				if chunk > 0 {
					r = &chunkReader{data: []byte(tt.input), n: chunk}
				}
				got := decodeAll(r)
				if got.err != nil {
					t.Fatalf("error: %v", got.err)
				}
				if len(got.events) != len(tt.want) {
					t.Fatalf("got %d events %+v; want %d", len(got.events), got.events, len(tt.want))
				}
				for i, w := range tt.want {
					e := got.events[i]
					if e.Type != w.typ || e.Data != w.data || e.ID != w.id {
						t.Errorf("event %d = {%q %q %q}; want {%q %q %q}", i, e.Type, e.Data, e.ID, w.typ, w.data, w.id)
					}
				}
				if got.lastEventID != tt.lastID {
					t.Errorf("last event ID = %q; want %q", got.lastEventID, tt.lastID)
				}
				if tt.retry < 0 && got.hasRetry {
					t.Errorf("retry = %v; want none", got.retry)
				}
				if tt.retry >= 0 && (!got.hasRetry || got.retry != tt.retry) {
					t.Errorf("retry = %v (set %v); want %v", got.retry, got.hasRetry, tt.retry)
				}
				if tt.comments != nil && fmt.Sprint(got.comments) != fmt.Sprint(tt.comments) {
					t.Errorf("comments = %q; want %q", got.comments, tt.comments)
				}
			})
		}
	}
}

// TestDecoderCRLFSplitAcrossReads checks R2's hardest case: a CR ends one
// read and the LF starts the next. The event must be dispatched as soon as
// the CR arrives (a live stream may send nothing more for a while), and the
// LF must not count as a second, empty line.
func TestDecoderCRLFSplitAcrossReads(t *testing.T) {
	r := &splitReader{pieces: [][]byte{[]byte("data: a\r"), []byte("\ndata: b\r\n\r"), []byte("\nid: 1\r"), []byte("\n\r\n")}}
	got := decodeAll(r)
	if got.err != nil || len(got.events) != 1 || got.events[0].Data != "a\nb" || got.lastEventID != "1" {
		t.Fatalf("got %+v; want one event a\\nb and last id 1", got)
	}
}

// blockingReader hands out its pieces, then blocks until closed, like a
// live stream that has sent an event and waits.
type blockingReader struct {
	pieces [][]byte
	wait   chan struct{}
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.pieces) == 0 {
		<-r.wait
		return 0, io.EOF
	}
	n := copy(p, r.pieces[0])
	r.pieces = r.pieces[1:]
	return n, nil
}

func TestDecoderDispatchesWithoutWaitingForMoreInput(t *testing.T) {
	for _, input := range []string{"data: a\n\n", "data: a\r\r", "data: a\r\n\r\n", "data: a\r\n\r"} {
		r := &blockingReader{pieces: [][]byte{[]byte(input)}, wait: make(chan struct{})}
		d := sse.NewDecoder(r)
		ev, err := d.Next()
		close(r.wait)
		if err != nil || ev.Data != "a" {
			t.Errorf("%q: got %+v, %v; want data a", input, ev, err)
		}
	}
}

func TestDecoderMaxEventSize(t *testing.T) {
	t.Run("data over the limit", func(t *testing.T) {
		d := sse.NewDecoder(strings.NewReader("data: 12345\ndata: 67890\n\n"))
		d.MaxEventSize = 8
		if _, err := d.Next(); !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("err = %v; want ErrEventTooLarge", err)
		}
		if _, err := d.Next(); !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("second Next err = %v; want the same sticky error", err)
		}
	})
	t.Run("endless line", func(t *testing.T) {
		d := sse.NewDecoder(io.MultiReader(strings.NewReader(": "), endlessReader{}))
		d.MaxEventSize = 1 << 20
		if _, err := d.Next(); !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("err = %v; want ErrEventTooLarge", err)
		}
	})
	t.Run("default accepts multi-megabyte events", func(t *testing.T) {
		big := strings.Repeat("x", 10<<20)
		d := sse.NewDecoder(strings.NewReader("data: " + big + "\n\n"))
		ev, err := d.Next()
		if err != nil || len(ev.Data) != len(big) {
			t.Fatalf("got %d bytes, %v; want %d bytes", len(ev.Data), err, len(big))
		}
	})
}

type endlessReader struct{}

func (endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestDecoderReadErrorIsReturned(t *testing.T) {
	boom := errors.New("boom")
	d := sse.NewDecoder(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), errReader{boom}))
	if ev, err := d.Next(); err != nil || ev.Data != "a" {
		t.Fatalf("first = %+v, %v", ev, err)
	}
	if _, err := d.Next(); !errors.Is(err, boom) {
		t.Fatalf("err = %v; want boom", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestDecoderSetLastEventID(t *testing.T) {
	d := sse.NewDecoder(strings.NewReader("data: a\n\nid: 2\ndata: b\n\n"))
	d.SetLastEventID("1")
	var ids []string
	for ev, err := range d.Events() {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	if fmt.Sprint(ids) != "[1 2]" {
		t.Fatalf("ids = %v; want [1 2]", ids)
	}
}

func TestDecoderEventRetry(t *testing.T) {
	d := sse.NewDecoder(strings.NewReader("retry: 0\ndata: a\n\ndata: b\n\n"))
	a, _ := d.Next()
	b, _ := d.Next()
	if !a.HasRetry || a.Retry != 0 || b.HasRetry {
		t.Fatalf("a = %+v, b = %+v; want retry 0 on a only", a, b)
	}
}
