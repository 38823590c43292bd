package redisstream

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
)

func TestSeqOf(t *testing.T) {
	tests := []struct {
		id   string
		want uint64
	}{
		{"0-1", 1},
		{"1-0", 1 << seqBits},
		{"1-4194303", 1<<seqBits | maxN},
		{"1767225600000-7", 1767225600000<<seqBits | 7},
		{"4398046511103-4194303", 1<<64 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := seqOf(tt.id)
			if err != nil || got != tt.want {
				t.Fatalf("seqOf(%q) = %d, %v; want %d", tt.id, got, err, tt.want)
			}
			if back := entryID(got); back != tt.id {
				t.Errorf("entryID(%d) = %q; want %q", got, back, tt.id)
			}
		})
	}
}

func TestSeqOfRefuses(t *testing.T) {
	for _, id := range []string{"", "12", "a-1", "1-b", "1-4194304", "4398046511104-0", "-1-0", "1-"} {
		t.Run(id, func(t *testing.T) {
			if _, err := seqOf(id); !errors.Is(err, errEntryID) {
				t.Errorf("seqOf(%q): got %v; want errEntryID", id, err)
			}
		})
	}
}

// TestSeqOrder checks that Seq sorts as stream ids do ("ms-n" compared as
// ms, then n).
func TestSeqOrder(t *testing.T) {
	ids := []string{"0-0", "0-1", "0-4194303", "1-0", "1-1", "999-4194303", "1000-0", "1767225600000-0", "1767225600000-12", "1767225600001-0"}
	var prev uint64
	for i, id := range ids {
		seq, err := seqOf(id)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && seq <= prev {
			t.Errorf("seqOf(%q) = %d, not above seqOf(%q) = %d", id, seq, ids[i-1], prev)
		}
		prev = seq
	}
}

func TestEntryRoundTrip(t *testing.T) {
	tests := []hub.Update{
		{ID: "a", Topics: []string{"https://example.com/a"}},
		{ID: "full", Topics: []string{"x:y", "12:34", "", "with\nnewline"}, Private: true, Type: "t", Data: "d\r\n", Retry: 1500 * time.Millisecond},
		{ID: "no-topics"},
	}
	for _, want := range tests {
		t.Run(want.ID, func(t *testing.T) {
			fields := appendFields(nil, &want)
			values := make(map[string]any)
			for i := 0; i < len(fields); i += 2 {
				values[fields[i].(string)] = fields[i+1].(string)
			}
			got, err := decodeEntry("1767225600000-3", values)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != want.ID || !slices.Equal(got.Topics, want.Topics) || got.Private != want.Private ||
				got.Type != want.Type || got.Data != want.Data || got.Retry != want.Retry {
				t.Errorf("round trip: got %+v; want %+v", got, want)
			}
			if got.Seq != 1767225600000<<seqBits|3 || !got.Time.Equal(time.UnixMilli(1767225600000)) {
				t.Errorf("Seq %d, Time %v; want from the entry id", got.Seq, got.Time)
			}
		})
	}
}

func TestDecodeEntryRefuses(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
	}{
		{"no id", map[string]any{"data": "x"}},
		{"topic length beyond the value", map[string]any{"id": "a", "topics": "9:abc"}},
		{"topic without length", map[string]any{"id": "a", "topics": "abc"}},
		{"bad retry", map[string]any{"id": "a", "retry": "soon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeEntry("1-0", tt.values); !errors.Is(err, errEntry) {
				t.Errorf("decodeEntry(%v): got %v; want errEntry", tt.values, err)
			}
		})
	}
}
