package debugger

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse"
)

func TestAssembler(t *testing.T) {
	tests := []struct {
		name      string
		events    []sse.Event
		format    string
		text      string
		reasoning string
		tools     string // name(args) …
		finish    string
	}{
		{
			name: "OpenAI chat",
			events: []sse.Event{
				{Data: `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`},
				{Data: `{"choices":[{"index":0,"delta":{"content":"Hi"}},{"index":1,"delta":{"content":"other answer"}}]}`},
				{Data: `{"choices":[{"index":0,"delta":{"content":" there"}}]}`},
				{Data: `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{\"x\""}}]}}]}`},
				{Data: `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":""}}]}}]}`},
				{Data: `{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}`},
				{Data: `{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`},
				{Data: `[DONE]`},
			},
			format: FormatOpenAI, text: "Hi there", tools: `f({"x":1}) g()`, finish: "tool_calls",
		},
		{
			name: "Anthropic",
			events: []sse.Event{
				{Type: "message_start", Data: `{"type":"message_start"}`},
				{Type: "content_block_start", Data: `{"type":"content_block_start","index":0,"content_block":{"type":"thinking"}}`},
				{Type: "content_block_delta", Data: `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}`},
				{Type: "content_block_delta", Data: `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Bon"}}`},
				{Type: "content_block_delta", Data: `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"jour"}}`},
				{Type: "content_block_start", Data: `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t1","name":"lookup"}}`},
				{Type: "content_block_delta", Data: `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"q\":"}}`},
				{Type: "content_block_delta", Data: `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"2}"}}`},
				{Type: "message_delta", Data: `{"type":"message_delta","delta":{"stop_reason":"end_turn"}}`},
				{Type: "message_stop", Data: `{"type":"message_stop"}`},
			},
			format: FormatAnthropic, text: "Bonjour", reasoning: "hmm", tools: `lookup({"q":2})`, finish: "end_turn",
		},
		{
			name: "OpenAI responses",
			events: []sse.Event{
				{Type: "response.output_text.delta", Data: `{"type":"response.output_text.delta","delta":"Hel"}`},
				{Type: "response.output_text.delta", Data: `{"type":"response.output_text.delta","delta":"lo"}`},
				{Type: "response.output_item.added", Data: `{"type":"response.output_item.added","output_index":1,"item":{"type":"function_call","call_id":"c","name":"h"}}`},
				{Type: "response.function_call_arguments.delta", Data: `{"type":"response.function_call_arguments.delta","output_index":1,"delta":"{}"}`},
				{Type: "response.completed", Data: `{"type":"response.completed"}`},
			},
			format: FormatResponses, text: "Hello", tools: `h({})`,
		},
		{
			name:   "not an LLM stream",
			events: []sse.Event{{Data: "hello"}, {Data: `{"a":1}`}, {Data: `[1,2]`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Assembler
			for i := range tt.events {
				a.Feed(&tt.events[i])
			}
			var tools []string
			for _, c := range a.ToolCalls() {
				tools = append(tools, c.Name+"("+c.Arguments+")")
			}
			got := fmt.Sprintf("%s|%s|%s|%s|%s", a.Format(), a.Text(), a.Reasoning(), strings.Join(tools, " "), a.Finish())
			want := fmt.Sprintf("%s|%s|%s|%s|%s", tt.format, tt.text, tt.reasoning, tt.tools, tt.finish)
			if got != want {
				t.Errorf("got %s; want %s", got, want)
			}
		})
	}
}

func TestBlockSplitter(t *testing.T) {
	const wire = "\xEF\xBB\xBF: c\ndata:a\r\n\r\nid:2\n\n: only a comment\n\nevent:x\rdata\r\rdata: tail"
	want := []string{"\xEF\xBB\xBF: c\ndata:a\r\n\r\n", "event:x\rdata\r\r"}
	// Every split of the input into two reads gives the same blocks.
	for cut := 0; cut <= len(wire); cut++ {
		var s blockSplitter
		s.Write([]byte(wire[:cut]))
		s.Write([]byte(wire[cut:]))
		var got []string
		for b := s.Pop(); b != nil; b = s.Pop() {
			got = append(got, string(b))
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("cut at %d: got %q; want %q", cut, got, want)
		}
		if e := s.LineEnds(); e != (LineEnds{LF: 5, CRLF: 2, CR: 3}) || !e.Mixed() {
			t.Fatalf("cut at %d: line ends %+v; want 5 LF, 2 CRLF, 3 CR", cut, e)
		}
	}
}

func TestServerToken(t *testing.T) {
	srv := httptest.NewServer(New(Config{Token: "s3cret"}))
	t.Cleanup(srv.Close)
	post := func(header, query string, body string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/api/sessions"+query, strings.NewReader(body))
		if header != "" {
			req.Header.Set(TokenHeader, header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := `{"method":"GET","url":"http://127.0.0.1:1/"}`
	tests := []struct {
		name          string
		header, query string
		body          string
		want          int
	}{
		{"no token", "", "", good, http.StatusUnauthorized},
		{"wrong token", "nope", "", good, http.StatusUnauthorized},
		{"token in header", "s3cret", "", good, http.StatusOK},
		{"token in query", "", "?token=s3cret", good, http.StatusOK},
		{"not JSON", "s3cret", "", "{", http.StatusBadRequest},
		{"file URL", "s3cret", "", `{"url":"file:///etc/passwd"}`, http.StatusBadRequest},
		{"bad method", "s3cret", "", `{"method":"G ET","url":"http://x/"}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := post(tt.header, tt.query, tt.body); got != tt.want {
				t.Errorf("status %d; want %d", got, tt.want)
			}
		})
	}
	// The page itself needs no token: it holds no secret.
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /: %s; want 200", resp.Status)
	}
}

// TestServerSession runs a session through the API and reads its records
// from the stream, as the page does.
func TestServerSession(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.Header.Get("X-A") != "b" {
			http.Error(w, "want POST and X-A", 400)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id:1\ndata:%s\n\n: hb\n\nevent:t\ndata:two\n\n", body)
	}))
	t.Cleanup(upstream.Close)
	recs := runSession(t, RequestSpec{Method: "POST", URL: upstream.URL, Headers: []Header{{"X-A", "b"}, {"Authorization", "Bearer k"}}, Body: "hi", NoReconnect: true}, nil)
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
	}
	if want := "request open event comment event end"; strings.Join(kinds, " ") != want {
		t.Fatalf("kinds %q; want %q", strings.Join(kinds, " "), want)
	}
	if h := recs[0].Request.Headers[1]; h.Value != "REDACTED" {
		t.Errorf("request record header %+v; want the token redacted", h)
	}
	if recs[1].Status != 200 || recs[1].Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("open record %+v; want 200 and the headers", recs[1])
	}
	if e := recs[2]; e.ID != "1" || e.Data != "hi" || e.Raw != "id:1\ndata:hi\n\n" || e.Seq != 1 {
		t.Errorf("first event %+v; want id 1, data hi and its raw block", e)
	}
	if e := recs[4]; e.Type != "t" || e.Raw != ": hb\n\nevent:t\ndata:two\n\n"[len(": hb\n\n"):] {
		t.Errorf("second event %+v", e)
	}
}

// runSession creates a session from spec on a new Server, reads the
// records of its stream to the end, as the page does, and returns them.
// after, when not nil, is called with the stream's URL once it ended.
func runSession(t *testing.T, spec RequestSpec, after func(streamURL string)) []Record {
	t.Helper()
	s := New(Config{})
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); srv.Close() })

	body, _ := json.Marshal(spec)
	resp, err := http.Post(srv.URL+"/api/sessions", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	streamURL := srv.URL + "/api/sessions/" + created.ID + "/stream"
	req, _ := http.NewRequestWithContext(ctx, "GET", streamURL, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var recs []Record
	for ev, err := range sse.NewDecoder(resp.Body).Events() {
		if err != nil {
			t.Fatal(err)
		}
		var batch []Record // the records ready together
		if err := json.Unmarshal([]byte(ev.Data), &batch); err != nil {
			t.Fatalf("stream event %q: %v; want a JSON array of records", ev.Data, err)
		}
		if len(batch) == 0 {
			t.Errorf("stream event %q: an empty batch", ev.Data)
		}
		for _, r := range batch {
			if err := r.exactRaw(); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
	}
	if after != nil {
		after(streamURL)
	}
	return recs
}

// TestServerSessionAttachOnce: a second attach (an EventSource
// reconnecting) gets 204, which stops an EventSource for good.
func TestServerSessionAttachOnce(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data:x\n\n")
	}))
	t.Cleanup(upstream.Close)
	runSession(t, RequestSpec{URL: upstream.URL, NoReconnect: true}, func(streamURL string) {
		resp, err := http.Get(streamURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("attach after the end: %s; want 204", resp.Status)
		}
	})
}

func TestReplayHandler(t *testing.T) {
	three := int64(3000)
	recs := []Record{
		{T: 0, Kind: KindRequest},
		{T: 5, Kind: KindOpen},
		{T: 10, Kind: KindEvent, ID: "a", Type: "message", Data: "one", Retry: &three},
		{T: 20, Kind: KindComment, Text: " hb"},
		{T: 30, Kind: KindEvent, ID: "b", Type: "x", Data: "two\nlines"},
	}
	h, err := NewReplayHandler(recs, ReplayConfig{Speed: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	get := func(lastID string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		lastID string
		status int
		body   string
	}{
		{"", 200, "id:a\nretry:3000\ndata:one\n\n: hb\nid:b\nevent:x\ndata:two\ndata:lines\n\n"},
		{"a", 200, ": hb\nid:b\nevent:x\ndata:two\ndata:lines\n\n"},
		{"unknown", 200, "id:a\nretry:3000\ndata:one\n\n: hb\nid:b\nevent:x\ndata:two\ndata:lines\n\n"},
		{"b", 204, ""},
	}
	for _, tt := range tests {
		t.Run("Last-Event-ID "+tt.lastID, func(t *testing.T) {
			status, body := get(tt.lastID)
			if status != tt.status || body != tt.body {
				t.Errorf("got %d %q; want %d %q", status, body, tt.status, tt.body)
			}
		})
	}
	if _, err := NewReplayHandler([]Record{{Kind: KindOpen}}, ReplayConfig{}); err != ErrNothingToReplay {
		t.Errorf("empty recording: %v; want ErrNothingToReplay", err)
	}
}
