package debugger

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// replayBody serves recs with NewReplayHandler and returns the body a
// plain reader gets, sending lastID as Last-Event-ID when set.
func replayBody(t *testing.T, recs []Record, cfg ReplayConfig, lastID string) string {
	t.Helper()
	h, err := NewReplayHandler(recs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReplayRaw replays events from their recorded block bytes, and from
// their fields when the bytes are missing or do not decode to the event.
func TestReplayRaw(t *testing.T) {
	open := Record{Kind: KindOpen}
	tests := []struct {
		name   string
		recs   []Record
		lastID string
		want   string
	}{
		{
			name: "block bytes, its comment sent once",
			recs: []Record{open,
				{Kind: KindComment, Text: " alone"},
				{Kind: KindComment, Text: " in \uFFFD"},
				{Kind: KindEvent, ID: "1", Type: "message", Data: "caf\uFFFD", Raw: ": in \xfe\r\nid: 1\r\ndata: caf\xe9\r\n\r\n"},
			},
			want: ": alone\n: in \xfe\r\nid: 1\r\ndata: caf\xe9\r\n\r\n",
		},
		{
			name: "block cut short: fields",
			recs: []Record{open, {Kind: KindEvent, Type: "message", Data: "xyz", Raw: "data: xy"}},
			want: "data:xyz\n\n",
		},
		{
			name: "id from a block without data: fields",
			recs: []Record{open, {Kind: KindEvent, ID: "5", Type: "message", Data: "x", Raw: "data: x\n\n"}},
			want: "id:5\ndata:x\n\n",
		},
		{
			name: "id kept from the previous event",
			recs: []Record{open,
				{Kind: KindEvent, ID: "5", Type: "message", Data: "a", Raw: "id: 5\ndata: a\n\n"},
				{Kind: KindEvent, ID: "5", Type: "message", Data: "b", Raw: "data: b\n\n"},
			},
			want: "id: 5\ndata: a\n\ndata: b\n\n",
		},
		{
			name: "BOM only as the first bytes",
			recs: []Record{open,
				{Kind: KindEvent, Type: "message", Data: "a", Raw: "\ufeffdata: a\n\n"},
				open,
				{Kind: KindEvent, Type: "message", Data: "b", Raw: "\ufeffdata: b\n\n"},
			},
			want: "\ufeffdata: a\n\ndata: b\n\n",
		},
		{
			name: "resumed",
			recs: []Record{open,
				{Kind: KindEvent, ID: "1", Type: "message", Data: "a", Raw: "id: 1\ndata: a\n\n"},
				{Kind: KindEvent, ID: "2", Type: "t", Data: "b\uFFFD", Raw: "id: 2\nevent: t\ndata: b\xff\n\n"},
			},
			lastID: "1",
			want:   "id: 2\nevent: t\ndata: b\xff\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := replayBody(t, tt.recs, ReplayConfig{Speed: -1}, tt.lastID); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

// TestReplayHeartbeat replays a gap longer than the heartbeat: ":" lines
// fill it.
func TestReplayHeartbeat(t *testing.T) {
	recs := []Record{
		{T: 0, Kind: KindOpen},
		{T: 0, Kind: KindEvent, Type: "message", Data: "a", Raw: "data: a\n\n"},
		{T: 300, Kind: KindEvent, Type: "message", Data: "b", Raw: "data: b\n\n"},
	}
	got := replayBody(t, recs, ReplayConfig{Heartbeat: 20 * time.Millisecond}, "")
	beats := strings.TrimSuffix(strings.TrimPrefix(got, "data: a\n\n"), "data: b\n\n")
	if beats == "" || strings.ReplaceAll(beats, ":\n", "") != "" {
		t.Errorf("got %q; want the two events with \":\" lines between", got)
	}
}
