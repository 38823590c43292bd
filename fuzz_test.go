package sse_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ssekit/sse"
)

// FuzzDecoderSplits checks that how the stream is cut into reads never
// changes what is decoded: the input read whole, in the fuzzed pieces (each
// byte of splits is the length of one read), with the last piece arriving
// together with io.EOF, and one byte per read must all give the same events,
// comments, final last event ID and retry. Seeds are the conformance vectors.
//
//	go test -run='^$' -fuzz=FuzzDecoderSplits -fuzztime=3m .
func FuzzDecoderSplits(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.Input), []byte{1, 2, 3, 5, 8, 13})
		f.Add([]byte(v.Input), []byte{byte(len(v.Input) / 2)})
	}
	f.Fuzz(func(t *testing.T, input, splits []byte) {
		whole := decodeAll(bytes.NewReader(input))
		if whole.err != nil {
			t.Fatalf("whole input: error %v", whole.err)
		}
		readers := map[string]io.Reader{
			"split":        &splitReader{pieces: cut(input, splits)},
			"split+EOF":    &eofWithLastReader{pieces: cut(input, splits)},
			"1-byte reads": &chunkReader{data: bytes.Clone(input), n: 1},
		}
		for name, r := range readers {
			got := decodeAll(r)
			if !reflect.DeepEqual(got, whole) {
				t.Errorf("%s: got %+v; want (as whole) %+v", name, got, whole)
			}
		}
	})
}

// cut splits input into pieces whose lengths are the bytes of splits; what
// is left after the last length is the final piece. A zero length is an
// empty piece, which splitReader skips.
func cut(input, splits []byte) [][]byte {
	var pieces [][]byte
	for _, n := range splits {
		k := min(int(n), len(input))
		pieces = append(pieces, bytes.Clone(input[:k]))
		input = input[k:]
	}
	return append(pieces, bytes.Clone(input))
}

// eofWithLastReader is splitReader whose last piece comes with io.EOF in
// the same Read, as io.Reader allows.
type eofWithLastReader struct{ pieces [][]byte }

func (r *eofWithLastReader) Read(p []byte) (int, error) {
	for len(r.pieces) > 0 && len(r.pieces[0]) == 0 {
		r.pieces = r.pieces[1:]
	}
	if len(r.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.pieces[0])
	r.pieces[0] = r.pieces[0][n:]
	if len(r.pieces) == 1 && len(r.pieces[0]) == 0 {
		r.pieces = nil
		return n, io.EOF
	}
	return n, nil
}

// FuzzEncodeDecode checks that encoding is the inverse of decoding: a
// comment and a valid Event written with AppendComment and AppendTo, then
// read back by a Decoder, give the same comment lines and the same event.
// "Same" allows what the format cannot carry: CR and CRLF in Data come back
// as LF, an empty Type comes back as "message", and Retry is whole
// milliseconds. An Event that does not Validate must fail with the matching
// error and append nothing.
//
//	go test -run='^$' -fuzz=FuzzEncodeDecode -fuzztime=3m .
func FuzzEncodeDecode(f *testing.F) {
	f.Add("1", "", "hello", int64(0), false, "")
	f.Add("", "update", "a\nb\r\nc\rd", int64(3000*time.Millisecond), false, "keep-alive")
	f.Add(" id", " type", " data\n\n", int64(0), true, " spaced\n")
	f.Add("", "message", "", int64(1), false, "")
	f.Add("x\x00", "", "", int64(0), false, "")
	f.Add("", "a\rb", "", int64(0), false, "")
	f.Add("", "", "", int64(-1), false, "")
	f.Add("\ufeffid", "\ufeff", "\ufeffdata\r", int64(1<<63-1), true, "\ufeff")
	f.Fuzz(func(t *testing.T, id, typ, data string, retry int64, hasRetry bool, comment string) {
		ev := sse.Event{ID: id, Type: typ, Data: data, Retry: time.Duration(retry), HasRetry: hasRetry}
		prefix := []byte("prefix")
		out, err := ev.AppendTo(prefix)

		var wantErr error
		switch {
		case strings.ContainsAny(id, "\r\n\x00"):
			wantErr = sse.ErrInvalidID
		case strings.ContainsAny(typ, "\r\n"):
			wantErr = sse.ErrInvalidType
		case retry < 0:
			wantErr = sse.ErrInvalidRetry
		}
		if wantErr != nil {
			if !errors.Is(err, wantErr) || string(out) != "prefix" {
				t.Fatalf("AppendTo(%+v) = %q, %v; want %q, %v", ev, out, err, "prefix", wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendTo(%+v): %v", ev, err)
		}
		if !utf8.ValidString(id) || !utf8.ValidString(typ) || !utf8.ValidString(data) || !utf8.ValidString(comment) {
			return // the decoder replaces invalid UTF-8; that is FuzzDecoderSplits' business
		}

		stream := sse.AppendComment(nil, comment)
		stream = append(stream, out[len("prefix"):]...)
		got := decodeAll(bytes.NewReader(stream))
		if got.err != nil {
			t.Fatalf("decoding %q: %v", stream, got.err)
		}

		want := sse.Event{ID: id, Type: typ, Data: normalizeNewlines(data)}
		if want.Type == "" {
			want.Type = "message"
		}
		if ev.Retry > 0 || ev.HasRetry {
			want.Retry = ev.Retry.Truncate(time.Millisecond)
			want.HasRetry = true
		}
		if len(got.events) != 1 || got.events[0] != want {
			t.Fatalf("decoding %q: got %+v; want [%+v]", stream, got.events, want)
		}
		if got.lastEventID != id {
			t.Errorf("last event ID = %q; want %q", got.lastEventID, id)
		}

		var wantComments []string
		for line := range strings.SplitSeq(normalizeNewlines(comment), "\n") {
			if comment == "" {
				line = "" // a heartbeat: a bare ":" line
			} else {
				line = " " + line // AppendComment writes ": " before each line
			}
			wantComments = append(wantComments, line)
		}
		if !reflect.DeepEqual(got.comments, wantComments) {
			t.Errorf("comments of %q = %q; want %q", stream, got.comments, wantComments)
		}
	})
}

// normalizeNewlines turns CRLF and lone CR into LF, as a reader does.
func normalizeNewlines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// TestEventWriteToInvalidWritesNothing is the WriteTo twin of the invalid
// case of FuzzEncodeDecode.
func TestEventWriteToInvalidWritesNothing(t *testing.T) {
	for _, ev := range []sse.Event{{ID: "a\nb"}, {Type: "x\r"}, {Retry: -time.Second}} {
		var buf bytes.Buffer
		if n, err := ev.WriteTo(&buf); err == nil || n != 0 || buf.Len() != 0 {
			t.Errorf("WriteTo(%+v) = %d, %v, wrote %q; want an error and nothing written", ev, n, err, buf.Bytes())
		}
	}
}
