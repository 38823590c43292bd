package debugger

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// notUTF8 is a stream whose bytes are not all valid UTF-8: a Latin-1 é in
// a comment and in data, a lone continuation byte, and a truncated
// sequence.
const notUTF8 = ": caf\xe9\n\nid: 1\ndata: caf\xe9 \x80 \xe2\x82\n\nid: 2\ndata: ok \xe2\x82\xac\n\n"

// TestRecordRawNotUTF8 watches a stream with bytes that are not UTF-8
// through the Server, as the page does: the raw block of each event and
// the raw chunks come exact (raw64), JSON's lossy "raw" field stays for
// older readers, and the data is decoded as a browser decodes it.
func TestRecordRawNotUTF8(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, notUTF8)
	}))
	t.Cleanup(upstream.Close)
	recs := runSession(t, RequestSpec{URL: upstream.URL, NoReconnect: true, Raw: true}, nil)

	var chunks strings.Builder
	var events []Record
	for _, r := range recs {
		switch r.Kind {
		case KindRaw:
			chunks.WriteString(r.Raw)
		case KindEvent:
			events = append(events, r)
		}
	}
	if chunks.String() != notUTF8 {
		t.Errorf("raw chunks: got %q; want %q", chunks.String(), notUTF8)
	}
	if len(events) != 2 {
		t.Fatalf("got %d events; want 2", len(events))
	}
	tests := []struct {
		name      string
		got       Record
		raw, data string
		raw64     bool
	}{
		{"not UTF-8", events[0], ": caf\xe9\n\nid: 1\ndata: caf\xe9 \x80 \xe2\x82\n\n"[len(": caf\xe9\n\n"):], "caf\uFFFD \uFFFD \uFFFD", true},
		{"UTF-8", events[1], "id: 2\ndata: ok \xe2\x82\xac\n\n", "ok €", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The Record in memory holds the exact bytes.
			if tt.got.Raw != tt.raw || tt.got.Data != tt.data {
				t.Errorf("got raw %q, data %q; want %q, %q", tt.got.Raw, tt.got.Data, tt.raw, tt.data)
			}
			if (tt.got.Raw64 != "") != tt.raw64 {
				t.Errorf("got raw64 %q; want it set: %v", tt.got.Raw64, tt.raw64)
			}
		})
	}
}

// TestRecordsRoundTrip writes records with RecordWriter and reads them
// back with ReadRecords: bytes that are not UTF-8 survive through raw64.
func TestRecordsRoundTrip(t *testing.T) {
	var in []Record
	for _, raw := range []string{"data: caf\xe9\n\n", "data: ok\n\n", "\xff\xfe\x00", ""} {
		r := Record{Kind: KindRaw}
		r.setRaw([]byte(raw))
		in = append(in, r)
	}
	var buf bytes.Buffer
	w := NewRecordWriter(&buf)
	for i := range in {
		if err := w.Write(&in[i]); err != nil {
			t.Fatal(err)
		}
	}
	if line := strings.SplitN(buf.String(), "\n", 2)[0]; !strings.Contains(line, `"raw":"data: caf\ufffd\n\n"`) || !strings.Contains(line, `"raw64":"ZGF0YTogY2Fm6QoK"`) {
		t.Errorf("JSON line %s; want the lossy raw and the exact raw64", line)
	}
	out, err := ReadRecords(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d records; want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].Raw != in[i].Raw {
			t.Errorf("record %d: got raw %q; want %q", i, out[i].Raw, in[i].Raw)
		}
	}
}

// TestReadRecordsFormats reads recordings made before raw64 existed, and
// rejects a raw64 that is not base64.
func TestReadRecordsFormats(t *testing.T) {
	tests := []struct {
		name    string
		jsonl   string
		raw     string // of the last record
		wantErr string
	}{
		{
			name:  "before raw64",
			jsonl: `{"t":0,"kind":"request","request":{"method":"GET","url":"http://x/"}}` + "\n" + `{"t":1,"kind":"event","seq":1,"data":"caf\ufffd","raw":"data: caf\ufffd\n\n"}`,
			raw:   "data: caf\uFFFD\n\n",
		},
		{
			name:  "raw64 wins over raw",
			jsonl: `{"t":1,"kind":"raw","raw":"\ufffd","raw64":"/w=="}`,
			raw:   "\xff",
		},
		{
			name:    "raw64 not base64",
			jsonl:   "\n" + `{"t":1,"kind":"raw","raw":"x","raw64":"%%%"}`,
			wantErr: "debugger: line 2: raw64:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := ReadRecords(strings.NewReader(tt.jsonl))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Errorf("got error %v; want one starting %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := recs[len(recs)-1].Raw; got != tt.raw {
				t.Errorf("got raw %q; want %q", got, tt.raw)
			}
		})
	}
}

// TestServerSessionBatches streams a burst larger than one batch, in
// records and in bytes: every record arrives, once, in order.
func TestServerSessionBatches(t *testing.T) {
	const n = 3 * maxBatchRecords
	big := strings.Repeat("x", 1000) // n of these pass maxBatchBytes
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "id: %d\ndata: %s\n\n", i, big)
		}
		io.WriteString(w, b.String())
	}))
	t.Cleanup(upstream.Close)
	recs := runSession(t, RequestSpec{URL: upstream.URL, NoReconnect: true}, nil)
	seq := 0
	for _, r := range recs {
		if r.Kind != KindEvent {
			continue
		}
		seq++
		if r.Seq != seq || r.ID != fmt.Sprint(seq) || r.Data != big {
			t.Fatalf("event %d: got seq %d, id %q, %d bytes of data; want seq and id %d, %d bytes", seq, r.Seq, r.ID, len(r.Data), seq, len(big))
		}
	}
	if seq != n {
		t.Errorf("got %d events; want %d", seq, n)
	}
	if last := recs[len(recs)-1]; last.Kind != KindEnd {
		t.Errorf("last record %+v; want the end", last)
	}
}
