package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// faultsDir holds the mock scripts of every fault, shared with the mock
// package's Go client tests.
const faultsDir = "../../mock/testdata/faults"

// startMock runs "ssekit mock" on a free port with args and returns its
// base URL once it serves.
func startMock(t *testing.T, args ...string) string {
	t.Helper()
	addr := e2etest.FreeAddr(t)
	mm, _, stderr := testMain()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() { done <- mm.Exit(mm.Run(ctx, append([]string{"mock", "--addr", addr}, args...))) }()
	t.Cleanup(func() { cancel(); <-done })
	stderr.WaitFor(t, "serving ")
	return "http://" + addr
}

// TestMockListenFaults: "ssekit listen" meets each fault script served by
// "ssekit mock" and does what the standard says (as the Go client does in
// the mock package's TestFaults).
func TestMockListenFaults(t *testing.T) {
	type ev struct{ ID, Type, Data string }
	tests := []struct {
		script string
		path   string
		args   []string
		events []ev
		code   int
		stderr string
	}{
		{script: "events.mock", args: []string{"--max-events", "4"}, events: []ev{
			{"1", "greeting", "hello"}, {"2", "message", "two\nlines"},
			{"2", "message", " one leading space is removed, the second stays"}, {"3", "message", `{"text":"json"}`},
		}},
		{script: "status-503.mock", code: exitFailure, stderr: "503"},
		{script: "status-204.mock", code: exitOK, stderr: "204"}, // told to stop: a clean end
		{script: "status-429.mock", code: exitFailure, stderr: "429"},
		{script: "wrong-content-type.mock", code: exitFailure, stderr: "application/json"},
		{script: "no-content-type.mock", code: exitFailure, stderr: "Content-Type"},
		{script: "drop-mid-event.mock", args: []string{"--max-events", "3"}, events: []ev{
			{"1", "message", "one"}, {"2", "message", "two, whole"}, {"3", "message", "three"}}},
		{script: "retry.mock", args: []string{"--max-events", "2"}, events: []ev{{"1", "message", "first"}, {"2", "message", "second"}}},
		{script: "split-random.mock", args: []string{"--max-events", "3"}, events: []ev{{"1", "message", "event 1"}, {"2", "message", "event 2"}, {"3", "message", "event 3"}}},
		{script: "fail-next.mock", args: []string{"--max-events", "2"}, events: []ev{{"1", "message", "one"}, {"2", "message", "two"}}},
		{script: "split-bytes.mock", args: []string{"--no-reconnect"}, events: []ev{{"1", "message", "split"}, {"1", "message", "at every byte"}}},
		{script: "trickle.mock", args: []string{"--no-reconnect"}, events: []ev{{"", "message", "slow"}}},
		{script: "gzip.mock", args: []string{"--no-reconnect"}, events: []ev{{"1", "message", "compressed"}, {"2", "message", "still compressed"}}},
		{script: "bom.mock", args: []string{"--no-reconnect"}, events: []ev{{"", "message", "after the BOM"}}},
		{script: "line-ends.mock", args: []string{"--no-reconnect"}, events: []ev{{"", "message", "cr"}, {"", "message", "crlf"}, {"", "message", "lf"}}},
		{script: "invalid-utf8.mock", args: []string{"--no-reconnect"}, events: []ev{{"", "message", "bad \uFFFD\uFFFD end"}, {"", "message", "good"}}},
		{script: "routes.mock", path: "/v1/chat/completions", args: []string{"--no-reconnect", "-H", "Authorization: Bearer test-key", "-d", `{"stream":true}`},
			events: []ev{{"", "message", `{"choices":[{"delta":{"content":"Hel"}}]}`}, {"", "message", `{"choices":[{"delta":{"content":"lo"}}]}`}, {"", "message", "[DONE]"}}},
		{script: "routes.mock", path: "/v1/chat/completions", args: []string{"-d", `{"stream":true}`}, code: exitFailure, stderr: "401"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.script, ".mock")+tt.path, func(t *testing.T) {
			t.Parallel()
			base := startMock(t, filepath.Join(faultsDir, tt.script))
			path := tt.path
			if path == "" {
				path = "/events"
			}
			got := run(t, nil, append(append([]string{"listen", "--json"}, tt.args...), base+path)...)
			if got.code != tt.code {
				t.Fatalf("exit code %d (stderr %q); want %d", got.code, got.stderr, tt.code)
			}
			if tt.stderr != "" && (!strings.Contains(got.stderr, tt.stderr) || strings.Count(strings.TrimSpace(got.stderr), "\n") > 0) {
				t.Errorf("stderr %q; want one line naming %q", got.stderr, tt.stderr)
			}
			var evs []ev
			for _, line := range strings.Split(strings.TrimSpace(got.stdout), "\n") {
				if line == "" {
					continue
				}
				var e ev
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("stdout line %q: %v", line, err)
				}
				evs = append(evs, e)
			}
			if len(evs) != len(tt.events) {
				t.Fatalf("got events %q; want %q", evs, tt.events)
			}
			for i := range evs {
				if evs[i] != tt.events[i] {
					t.Errorf("event %d: got %q; want %q", i, evs[i], tt.events[i])
				}
			}
		})
	}
}

// TestMockListenOversized: listen reads an event of 2 MiB whole (its
// limit is the decoder's default) and the events around it.
func TestMockListenOversized(t *testing.T) {
	base := startMock(t, filepath.Join(faultsDir, "oversized.mock"))
	got := run(t, nil, "listen", "--json", "--no-reconnect", base+"/events")
	var sizes []int
	for _, line := range strings.Split(strings.TrimSpace(got.stdout), "\n") {
		var e struct{ Data string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("a stdout line of %d bytes: %v", len(line), err)
		}
		sizes = append(sizes, len(e.Data))
	}
	if got.code != exitOK || len(sizes) != 3 || sizes[0] != len("small") || sizes[1] != 2<<20 || sizes[2] != len("after") {
		t.Errorf("exit %d, data sizes %v (stderr %.200q); want 0 and [5 %d 5]", got.code, sizes, got.stderr, 2<<20)
	}
}

// TestMockArticleFlask: the article's Flask example and its mock script
// send the same bytes, with the same Content-Type.
func TestMockArticleFlask(t *testing.T) {
	flaskURL := e2etest.StartArticleFlask(t, "../../"+e2etest.ArticleFlask)
	mockURL := startMock(t, filepath.Join(faultsDir, "article-flask.mock")) + "/events"
	type result struct {
		ct   string
		body string
		err  error
	}
	fetch := func(url string) (r result) {
		resp, err := http.Get(url)
		if err != nil {
			return result{err: err}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return result{resp.Header.Get("Content-Type"), string(b), err}
	}
	var flask, mocked result
	var wg sync.WaitGroup
	wg.Go(func() { flask = fetch(flaskURL) })
	wg.Go(func() { mocked = fetch(mockURL) })
	wg.Wait()
	if flask.err != nil || mocked.err != nil {
		t.Fatalf("flask: %v; mock: %v", flask.err, mocked.err)
	}
	if !strings.Contains(flask.body, "End of sample text") {
		t.Fatalf("the Flask server sent %q", flask.body)
	}
	if mocked.body != flask.body {
		t.Errorf("the mock's bytes differ from Flask's:\n%q\nwant\n%q", mocked.body, flask.body)
	}
	if mocked.ct != flask.ct {
		t.Errorf("Content-Type: got %q; want Flask's %q", mocked.ct, flask.ct)
	}
}

// TestMockBadScript: a bad script is refused, exit 2, one line with its
// file and line.
func TestMockBadScript(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.mock")
	os.WriteFile(file, []byte("route GET /x\n> data: ok\n>\npause forever\n"), 0o600)
	for _, args := range [][]string{{"mock", "--addr", "127.0.0.1:0", file}, {"mock", "--check", file}} {
		got := run(t, nil, args...)
		if got.code != exitUsage || !strings.Contains(got.stderr, "bad.mock:4: pause wants a duration") || strings.Count(got.stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line naming bad.mock:4", args, got.code, got.stderr)
		}
	}
	if got := run(t, nil, "mock", "--check", filepath.Join(faultsDir, "events.mock")); got.code != exitOK {
		t.Errorf("--check on a good script: exit %d, %q", got.code, got.stderr)
	}
	if got := run(t, nil, "mock"); got.code != exitUsage {
		t.Errorf("no script: exit %d; want 2", got.code)
	}
}

// TestMockRecording: a recording made by "listen --record" is served by
// "ssekit mock" as a script, and --convert prints that script: the same
// events, resumable.
func TestMockRecording(t *testing.T) {
	base := startMock(t, filepath.Join(faultsDir, "events.mock"))
	file := filepath.Join(t.TempDir(), "session.jsonl")
	first := run(t, nil, "listen", "--json", "--no-reconnect", "--record", file, base+"/events")
	if first.code != 0 {
		t.Fatalf("listen --record: exit %d (%q)", first.code, first.stderr)
	}
	conv := run(t, nil, "mock", "--convert", file)
	if conv.code != 0 || !strings.Contains(conv.stdout, "> event: greeting") || !strings.Contains(conv.stdout, "resume") {
		t.Fatalf("--convert: exit %d, %q (stderr %q)", conv.code, conv.stdout, conv.stderr)
	}
	script := filepath.Join(t.TempDir(), "session.mock")
	os.WriteFile(script, []byte(conv.stdout), 0o600)
	for _, src := range []string{file, script} {
		again := run(t, nil, "listen", "--json", "--no-reconnect", startMock(t, src)+"/any/path")
		if again.code != 0 || again.stdout != first.stdout {
			t.Errorf("%s served:\n%s\nwant what was recorded:\n%s (stderr %q)", filepath.Base(src), again.stdout, first.stdout, again.stderr)
		}
	}
	resumed := run(t, nil, "listen", "--json", "--no-reconnect", "--last-event-id", "2", startMock(t, file)+"/")
	if strings.Contains(resumed.stdout, "hello") || !strings.Contains(resumed.stdout, `"id":"3"`) {
		t.Errorf("resumed after 2: %q; want only the events after it", resumed.stdout)
	}
}

// TestMockRecordingCRLF: a recording whose events came with CRLF line
// ends becomes bytes steps, served exactly and still resumable.
func TestMockRecordingCRLF(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "crlf.mock")
	os.WriteFile(script, []byte("lineend crlf\n> id: 1\n> data: a\n>\n> id: 2\n> data: b\n>\n"), 0o600)
	file := filepath.Join(dir, "session.jsonl")
	if got := run(t, nil, "listen", "--json", "--no-reconnect", "--record", file, startMock(t, script)+"/"); got.code != 0 {
		t.Fatalf("listen --record: exit %d (%q)", got.code, got.stderr)
	}
	conv := run(t, nil, "mock", "--convert", file)
	if !strings.Contains(conv.stdout, `bytes "id: 1\r\ndata: a\r\n\r\n"`) {
		t.Errorf("--convert: %q; want the CRLF blocks as bytes steps", conv.stdout)
	}
	base := startMock(t, file)
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "id: 1\r\ndata: a\r\n\r\nid: 2\r\ndata: b\r\n\r\n" {
		t.Errorf("served %q; want the recorded bytes", b)
	}
	resumed := run(t, nil, "listen", "--json", "--no-reconnect", "--last-event-id", "1", base+"/")
	if resumed.stdout != `{"type":"message","data":"b","id":"2"}`+"\n" {
		t.Errorf("resumed after 1: %q; want only event 2", resumed.stdout)
	}
}
