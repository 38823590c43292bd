package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// replayBytes serves file with "ssekit replay --speed 0" and returns the
// body bytes a plain HTTP reader gets from it.
func replayBytes(t *testing.T, file, wantLog string) string {
	t.Helper()
	addr := e2etest.FreeAddr(t)
	replay, _, replayErr := testMain()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() { done <- replay.Exit(replay.Run(ctx, []string{"replay", "--addr", addr, "--speed", "0", file})) }()
	t.Cleanup(func() { cancel(); <-done })
	replayErr.WaitFor(t, wantLog)
	resp, err := http.Get("http://" + addr + "/")
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

// TestReplayExactBytes records a stream whose bytes are not all UTF-8 with
// "listen --record" and replays it: a raw reader gets each event's block
// byte for byte (the BOM, CRLF, comments inside the block, invalid UTF-8 in
// data and in a comment). A comment in a block of its own has no raw bytes
// recorded, so it is re-encoded from its (decoded) text.
func TestReplayExactBytes(t *testing.T) {
	blocks := []string{
		"\xEF\xBB\xBF: caf\xe9 first\nid: 1\ndata: caf\xe9 \x80 \xe2\x82\n\n",
		"id: 2\r\nevent: up\r\n: in \xfe block\r\ndata: ok \xe2\x82\xac\r\nretry: 1500\r\n\r\n",
		"data: inherits id 2 \xc3\n\n",
	}
	const alone = ": alone \xff\n\n"
	wire := blocks[0] + alone + blocks[1] + blocks[2]
	srv := httptest.NewServer(streamOf(wire))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "session.jsonl")
	if got := run(t, nil, "listen", "--json", "--no-reconnect", "--record", file, srv.URL); got.code != 0 {
		t.Fatalf("listen --record: exit code %d (stderr %q)", got.code, got.stderr)
	}
	got := replayBytes(t, file, "serving 3 events")
	want := blocks[0] + ": alone \uFFFD\n" + blocks[1] + blocks[2]
	if got != want {
		t.Errorf("replayed bytes:\n%q\nwant:\n%q", got, want)
	}
}

// TestReplayOldRecordings replays recordings made before raw64, and before
// raw: events without raw bytes are encoded from their fields as before.
func TestReplayOldRecordings(t *testing.T) {
	tests := []struct {
		name, jsonl, want string
	}{
		{
			name: "no raw",
			jsonl: `{"t":0,"kind":"open","attempt":1,"status":200}
{"t":1,"kind":"event","seq":1,"id":"1","type":"message","data":"caf\ufffd","retry":1500}
{"t":2,"kind":"comment","text":" hb"}
{"t":3,"kind":"event","seq":2,"id":"2","type":"up","data":"a\nb"}
{"t":4,"kind":"end","text":"ended"}
`,
			want: "id:1\nretry:1500\ndata:caf\uFFFD\n\n: hb\nid:2\nevent:up\ndata:a\ndata:b\n\n",
		},
		{
			name: "raw without raw64",
			jsonl: `{"t":0,"kind":"open","attempt":1,"status":200}
{"t":1,"kind":"comment","text":" hb"}
{"t":1,"kind":"event","seq":1,"id":"1","type":"message","data":"caf\ufffd","raw":": hb\nid: 1\ndata: caf\ufffd\n\n"}
`,
			want: ": hb\nid: 1\ndata: caf\uFFFD\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "old.jsonl")
			if err := os.WriteFile(file, []byte(tt.jsonl), 0o600); err != nil {
				t.Fatal(err)
			}
			got := replayBytes(t, file, "serving")
			if got != tt.want {
				t.Errorf("replayed bytes:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}
