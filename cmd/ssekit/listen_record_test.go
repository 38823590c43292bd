package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/internal/e2etest"
)

// chunked serves each part as its own write and flush, so the reads of a
// client see those boundaries.
func chunked(parts ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, p := range parts {
			w.Write([]byte(p))
			rc.Flush()
			time.Sleep(30 * time.Millisecond)
		}
	})
}

func TestListenRaw(t *testing.T) {
	srv := httptest.NewServer(chunked("id: 1\r\ndata: hel", "lo\r\n\r\n", ": ping\n"))
	t.Cleanup(srv.Close)
	m, _, _ := testMain()
	m.Now = fakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 250*time.Millisecond)
	got := run(t, m, "listen", "--raw", "--no-reconnect", srv.URL)
	const want = "── read 1 · 16 bytes · 03:04:05.250 +250ms ──\n" +
		"id: 1\\r\\n\n" +
		"data: hel\n" +
		"── read 2 · 6 bytes · 03:04:05.500 +250ms ──\n" +
		"lo\\r\\n\n" +
		"\\r\\n\n" +
		"── read 3 · 7 bytes · 03:04:06.000 +250ms ──\n" +
		": ping\\n\n"
	if got.stdout != want {
		t.Errorf("stdout:\n%q\nwant:\n%q", got.stdout, want)
	}
	if got.code != 0 {
		t.Errorf("exit code %d; want 0 (stderr %q)", got.code, got.stderr)
	}
	if got := run(t, nil, "listen", "--raw", "--json", srv.URL); got.code != exitUsage {
		t.Errorf("--raw --json: exit code %d; want %d", got.code, exitUsage)
	}
}

func TestListenLLM(t *testing.T) {
	openAI := []string{
		`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`,
		`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]}`,
		`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}}]}`,
		`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"get_weather","arguments":"{\"city\":"}}]}}]}`,
		`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]}`,
		`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
		`[DONE]`,
	}
	anthropic := []sse.Event{
		{Type: "message_start", Data: `{"type":"message_start","message":{"id":"msg_1"}}`},
		{Type: "content_block_start", Data: `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		{Type: "content_block_delta", Data: `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Bon"}}`},
		{Type: "content_block_delta", Data: `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"jour"}}`},
		{Type: "ping", Data: `{"type": "ping"}`},
		{Type: "content_block_start", Data: `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"lookup","input":{}}}`},
		{Type: "content_block_delta", Data: `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"q\": 1"}}`},
		{Type: "content_block_delta", Data: `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"}"}}`},
		{Type: "message_delta", Data: `{"type":"message_delta","delta":{"stop_reason":"tool_use"}}`},
		{Type: "message_stop", Data: `{"type":"message_stop"}`},
	}
	var openAIWire, anthropicWire strings.Builder
	for _, c := range openAI {
		ev := sse.Event{Data: c}
		ev.WriteTo(&openAIWire)
	}
	for _, ev := range anthropic {
		ev.WriteTo(&anthropicWire)
	}
	tests := []struct {
		name, wire, stdout, stderrEnd string
	}{
		{"OpenAI", openAIWire.String(), "Hello\n[tool call get_weather] call_1\n{\"city\":\"Paris\"}\n", "the model stopped: tool_calls\n"},
		{"Anthropic", anthropicWire.String(), "Bonjour\n[tool call lookup] toolu_1\n{\"q\": 1}\n", "the model stopped: tool_use\n"},
		{"not an LLM", "data: plain\n\n", "", "no LLM deltas recognised (OpenAI choices[].delta, Anthropic content_block_delta, OpenAI response.*.delta, Gemini candidates[].content, MCP JSON-RPC)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(streamOf(tt.wire))
			t.Cleanup(srv.Close)
			got := run(t, nil, "listen", "--llm", "--no-reconnect", srv.URL)
			if got.stdout != tt.stdout {
				t.Errorf("stdout %q; want %q", got.stdout, tt.stdout)
			}
			if !strings.HasSuffix(got.stderr, tt.stderrEnd) {
				t.Errorf("stderr %q; want it to end with %q", got.stderr, tt.stderrEnd)
			}
		})
	}
}

// TestListenRecordReplay records a stream with --record, serves the
// recording with "ssekit replay", and listens to the replay: the same
// events, with gaps like the original's.
func TestListenRecordReplay(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{})
		if err != nil {
			return
		}
		defer s.Close()
		for i := 1; i <= 4; i++ {
			ev := sse.Event{ID: strconv.Itoa(i), Data: "tick " + strconv.Itoa(i)}
			if i == 2 {
				ev.Type = "update"
				s.Comment("hb")
			}
			if i == 1 {
				ev.Retry = 1500 * time.Millisecond
			}
			s.Send(ev)
			time.Sleep(200 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "session.jsonl")
	got := run(t, nil, "listen", "--json", "--no-reconnect", "-H", "Authorization: Bearer secret", "--record", file, srv.URL)
	if got.code != 0 {
		t.Fatalf("listen --record: exit code %d (stderr %q)", got.code, got.stderr)
	}
	original := got.stdout
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "secret") {
		t.Errorf("the recording holds the bearer token:\n%s", raw)
	}
	f, _ := os.Open(file)
	recs, err := debugger.ReadRecords(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var times []float64
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
		if r.Kind == debugger.KindEvent {
			times = append(times, r.T)
		}
	}
	if want := "request open event comment event event event end"; strings.Join(kinds, " ") != want {
		t.Errorf("record kinds %q; want %q", strings.Join(kinds, " "), want)
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i] - times[i-1]; gap < 150 {
			t.Errorf("recorded gap %d: %.0f ms; want about 200", i, gap)
		}
	}

	// Replay it with "ssekit replay" at double speed.
	addr := e2etest.FreeAddr(t)
	replay, _, replayErr := testMain()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() { done <- replay.Exit(replay.Run(ctx, []string{"replay", "--addr", addr, "--speed", "2", file})) }()
	t.Cleanup(func() { cancel(); <-done })
	replayErr.WaitFor(t, "serving 4 events")

	m, _, _ := testMain()
	start := time.Now()
	got = run(t, m, "listen", "--json", "--no-reconnect", "http://"+addr+"/anything")
	took := time.Since(start)
	if got.stdout != original {
		t.Errorf("replayed:\n%s\nwant the original:\n%s", got.stdout, original)
	}
	if took < 250*time.Millisecond {
		t.Errorf("the replay took %s; want the recorded gaps halved (about 300 ms)", took)
	}
	// Resuming after the last event gets 204: the client stops.
	got = run(t, nil, "listen", "--last-event-id", "4", "http://"+addr+"/")
	if got.code != 0 || !strings.Contains(got.stderr, "204 No Content") {
		t.Errorf("resume after the end: exit code %d, stderr %q; want 0 and 204", got.code, got.stderr)
	}
	// Resuming after event 2 gets 3 and 4 only.
	got = run(t, nil, "listen", "--json", "--no-reconnect", "--last-event-id", "2", "http://"+addr+"/")
	if n := strings.Count(got.stdout, "\n"); n != 2 || !strings.Contains(got.stdout, `"id":"3"`) {
		t.Errorf("resume after 2: got %q; want events 3 and 4", got.stdout)
	}
}

// TestListenArticleFlask debugs the article's Flask server with listen:
// the five sentences, about a second apart (read from --record).
func TestListenArticleFlask(t *testing.T) {
	url := e2etest.StartArticleFlask(t, "../../"+e2etest.ArticleFlask)
	file := filepath.Join(t.TempDir(), "flask.jsonl")
	got := run(t, nil, "listen", "--no-reconnect", "--record", file, url)
	if got.code != 0 {
		t.Fatalf("exit code %d (stderr %q)", got.code, got.stderr)
	}
	sentences := regexp.MustCompile(`(?m)^  (.+)$`).FindAllStringSubmatch(got.stdout, -1)
	want := []string{
		"Hello, this is an example of a continuous text output.",
		"It contains multiple sentences, each of which will be sent to the client as an event.",
		"This is to simulate the functionality of Server-Sent Events (SSE).",
		"We can use this method to push real-time updates.",
		"End of sample text, thank you!",
	}
	if len(sentences) != len(want) {
		t.Fatalf("stdout:\n%s\nwant the five sentences", got.stdout)
	}
	for i, s := range sentences {
		if s[1] != want[i] {
			t.Errorf("sentence %d: got %q; want %q", i, s[1], want[i])
		}
	}
	f, _ := os.Open(file)
	recs, err := debugger.ReadRecords(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var prev float64 = -1
	n := 0
	for _, r := range recs {
		if r.Kind != debugger.KindEvent {
			continue
		}
		if prev >= 0 && r.T-prev < 500 {
			t.Errorf("event %d came %.0f ms after the previous one; want about a second", r.Seq, r.T-prev)
		}
		prev = r.T
		n++
	}
	if n != 5 {
		t.Errorf("%d events recorded; want 5", n)
	}
	// The human output shows the gaps, about a second each.
	if gaps := regexp.MustCompile(`\+1(\.\d+)?s|\+[5-9]\d\dms`).FindAllString(got.stdout, -1); len(gaps) < 4 {
		t.Errorf("gaps %q in:\n%s\nwant four of about a second", gaps, got.stdout)
	}
}
