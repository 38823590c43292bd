package updatecodec

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
)

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		u    hub.Update
	}{
		{"minimal", hub.Update{ID: "a"}},
		{"all fields", hub.Update{
			ID: "urn:uuid:1", Topics: []string{"https://example.com/1", "urn:x"}, Private: true,
			Type: "t", Data: "line\nline\r\n\x00\xff", Retry: 3 * time.Second,
		}},
		{"empty topic", hub.Update{ID: "e", Topics: []string{""}}},
		{"time before 1970", hub.Update{ID: "old", Time: time.Date(1960, 1, 1, 0, 0, 0, 1, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.u
			if in.Time.IsZero() {
				in.Time = time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
			}
			in.Seq = 42
			b := Append(nil, &in)
			if len(b) > EncodedSize(&in) {
				t.Errorf("encoded %d bytes; EncodedSize said at most %d", len(b), EncodedSize(&in))
			}
			got, err := Decode(b, 42)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !got.Time.Equal(in.Time) {
				t.Errorf("Time = %v; want %v", got.Time, in.Time)
			}
			got.Time = in.Time
			if !reflect.DeepEqual(*got, in) {
				t.Errorf("got %+v; want %+v", *got, in)
			}
			pt, id, err := PeekTimeID(b)
			if err != nil || !pt.Equal(in.Time) || string(id) != in.ID {
				t.Errorf("PeekTimeID = %v, %q, %v; want %v, %q, nil", pt, id, err, in.Time, in.ID)
			}
		})
	}
}

func TestCodecFormat(t *testing.T) {
	// The version-1 layout, byte for byte: it is on disk, so it must not
	// change without a new version byte.
	u := hub.Update{ID: "id", Topics: []string{"t"}, Private: true, Type: "ty", Data: "d", Retry: 1, Time: time.Unix(0, 2)}
	want := []byte{1, 1, 4, 2, 2, 'i', 'd', 2, 't', 'y', 1, 1, 't', 1, 'd'}
	if got := Append(nil, &u); !reflect.DeepEqual(got, want) {
		t.Fatalf("encoding = %v; want %v", got, want)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := Append(nil, &hub.Update{ID: "id", Topics: []string{"t"}, Data: "data"})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{1}},
		{"unknown version", append([]byte{2}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"huge topic count", []byte{1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}},
		{"huge length", []byte{1, 0, 0, 0, 0xff, 0xff, 0x03}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.b, 1); !errors.Is(err, ErrCorrupt) {
				t.Errorf("decode: %v; want ErrCorrupt", err)
			}
		})
	}
}

func FuzzCodec(f *testing.F) {
	f.Add("id", "topic", "type", "data", true, int64(1500), int64(1e18))
	f.Add("", "", "", "", false, int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, id, topic, typ, data string, private bool, retry, nanos int64) {
		in := hub.Update{ID: id, Topics: []string{topic, data}, Type: typ, Data: data,
			Private: private, Retry: time.Duration(retry), Time: time.Unix(0, nanos), Seq: 7}
		b := Append(nil, &in)
		got, err := Decode(b, 7)
		if err != nil {
			t.Fatalf("decode of an encoding: %v", err)
		}
		if !got.Time.Equal(in.Time) {
			t.Fatalf("Time = %v; want %v", got.Time, in.Time)
		}
		got.Time = in.Time
		if !reflect.DeepEqual(*got, in) {
			t.Fatalf("got %+v; want %+v", *got, in)
		}
		// Any prefix or mutation decodes or fails cleanly, never panics.
		for i := range b {
			Decode(b[:i], 7)
			PeekTimeID(b[:i])
		}
		Decode([]byte(data), 7)
	})
}

// TestDecodeAllocations pins the cost of reading an update back: the
// update, its topics slice, and one copy holding every string.
func TestDecodeAllocations(t *testing.T) {
	u := hub.Update{ID: "urn:uuid:1", Topics: []string{"https://example.com/a", "https://example.com/b"}, Type: "t", Data: "payload", Time: time.Unix(1, 0)}
	b := Append(nil, &u)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Decode(b, 1); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Errorf("Decode: %.0f allocations; want at most 3", allocs)
	}
}
