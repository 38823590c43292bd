package mock_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/mock"
	"github.com/ssekit/sse/ssetest"
)

// ev is the part of an event the fault tests compare.
type ev struct{ id, typ, data string }

// faultCase is what the standard says a client does when it meets one
// script of testdata/faults (the rules R1–R19 of the event-stream
// standard).
type faultCase struct {
	script string
	path   string // "/events" when empty
	events []ev   // dispatched, in order
	// end checks the error that ends the stream; nil means the test stops
	// after the events (the stream would go on reconnecting).
	end func(t *testing.T, err error)
	// lastIDs are the Last-Event-ID headers of the requests the mock saw.
	lastIDs []string
	client  func(c *sse.Client)
	check   func(t *testing.T, es *sse.EventSource)
}

func statusEnd(code int, header, value string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		var se *sse.StatusError
		if !errors.As(err, &se) || se.StatusCode != code {
			t.Fatalf("stream ended with %v; want a StatusError %d (R17: no reconnect)", err, code)
		}
		if header != "" && se.Header.Get(header) != value {
			t.Errorf("%s: got %q; want %q", header, se.Header.Get(header), value)
		}
	}
}

func contentTypeEnd(want string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		var ce *sse.ContentTypeError
		if !errors.As(err, &ce) || ce.ContentType != want {
			t.Fatalf("stream ended with %v; want a ContentTypeError for %q (R18)", err, want)
		}
	}
}

// FaultCases are shared by the Go client's tests here and listen's in
// cmd/ssekit (through the same files).
var faultCases = []faultCase{
	{script: "events.mock", events: []ev{
		{"1", "greeting", "hello"}, {"2", "message", "two\nlines"},
		{"2", "message", " one leading space is removed, the second stays"}, {"3", "message", `{"text":"json"}`},
	}, check: func(t *testing.T, es *sse.EventSource) {
		if es.Retry() != 250*time.Millisecond {
			t.Errorf("retry: got %v; want 250ms (R11)", es.Retry())
		}
	}},
	{script: "status-503.mock", end: statusEnd(503, "Retry-After", "2"), lastIDs: []string{""}},
	{script: "status-204.mock", end: statusEnd(204, "", ""), lastIDs: []string{""}},
	{script: "status-429.mock", end: statusEnd(429, "Retry-After", "30"), lastIDs: []string{""}},
	{script: "wrong-content-type.mock", end: contentTypeEnd("application/json")},
	{script: "no-content-type.mock", end: contentTypeEnd("")},
	{script: "retry.mock", events: []ev{{"1", "message", "first"}, {"2", "message", "second"}},
		lastIDs: []string{"", "1"},
		// A minute of client-side wait: only the server's retry: 40 lets
		// the second event arrive before the test's deadline.
		client: func(c *sse.Client) { c.Retry, c.MaxRetry = time.Minute, time.Minute },
		check: func(t *testing.T, es *sse.EventSource) {
			if es.Retry() != 40*time.Millisecond {
				t.Errorf("retry: got %v; want 40ms kept across the reconnection (R11, R14)", es.Retry())
			}
		}},
	{script: "drop-mid-event.mock", events: []ev{{"1", "message", "one"}, {"2", "message", "two, whole"}, {"3", "message", "three"}},
		lastIDs: []string{"", "1"}},
	{script: "fail-next.mock", events: []ev{{"1", "message", "one"}, {"2", "message", "two"}},
		lastIDs: []string{"", "1", "1", "1"}},
	// The later BOM is content: "\uFEFFdata" is no field, so its block
	// dispatches nothing (R1, R7).
	{script: "split-bytes.mock", events: []ev{{"1", "message", "split"}, {"1", "message", "at every byte"}}},
	{script: "split-random.mock", events: func() []ev {
		var evs []ev
		for i := 1; i <= 20; i++ {
			n := strconv.Itoa(i)
			evs = append(evs, ev{n, "message", "event " + n})
		}
		return evs
	}()},
	{script: "trickle.mock", events: []ev{{"", "message", "slow"}}},
	{script: "gzip.mock", events: []ev{{"1", "message", "compressed"}, {"2", "message", "still compressed"}}},
	{script: "bom.mock", events: []ev{{"", "message", "after the BOM"}}},
	{script: "line-ends.mock", events: []ev{{"", "message", "cr"}, {"", "message", "crlf"}, {"", "message", "lf"}}},
	{script: "invalid-utf8.mock", events: []ev{{"", "message", "bad \uFFFD\uFFFD end"}, {"", "message", "good"}}},
	{script: "oversized.mock", events: []ev{{"", "message", "small"}},
		client: func(c *sse.Client) { c.MaxEventSize = 1 << 20 },
		end: func(t *testing.T, err error) {
			if !errors.Is(err, sse.ErrEventTooLarge) {
				t.Fatalf("stream ended with %v; want ErrEventTooLarge", err)
			}
		}},
	{script: "routes.mock", path: "/health", end: contentTypeEnd("text/plain")},
}

func readScript(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "faults", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFaults runs each fault script against the Go client over HTTP/1.1
// and HTTP/2 and checks what the standard says the client does.
func TestFaults(t *testing.T) {
	for _, fc := range faultCases {
		t.Run(strings.TrimSuffix(fc.script, ".mock"), func(t *testing.T) {
			ssetest.Run(t, func(t *testing.T, proto string) {
				m := ssetest.NewMockProto(t, proto, readScript(t, fc.script), mock.Options{})
				path := fc.path
				if path == "" {
					path = "/events"
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+path, nil)
				c := &sse.Client{HTTPClient: m.Client(), Retry: 5 * time.Millisecond, MaxRetry: 20 * time.Millisecond}
				if fc.client != nil {
					fc.client(c)
				}
				es := c.Connect(req)
				defer es.Close()
				var got []ev
				var err error
				for len(got) < len(fc.events) {
					var e sse.Event
					if e, err = es.Next(); err != nil {
						break
					}
					got = append(got, ev{e.ID, e.Type, e.Data})
				}
				if len(got) != len(fc.events) {
					t.Fatalf("got %d events %q before %v; want %q", len(got), got, err, fc.events)
				}
				for i := range got {
					if got[i] != fc.events[i] {
						t.Errorf("event %d: got %q; want %q", i, got[i], fc.events[i])
					}
				}
				if fc.end != nil {
					_, err = es.Next()
					fc.end(t, err)
				}
				if fc.check != nil {
					fc.check(t, es)
				}
				if fc.lastIDs != nil {
					var ids []string
					for _, s := range m.Mock.Served() {
						ids = append(ids, s.LastEventID)
					}
					if strings.Join(ids, ",") != strings.Join(fc.lastIDs, ",") {
						t.Errorf("Last-Event-ID of each request: got %q; want %q (R14)", ids, fc.lastIDs)
					}
				}
			})
		})
	}
}

// TestRoutesLLM is an LLM endpoint mock: the request that matches gets the
// stream, one without the key gets 401, an unknown path 404.
func TestRoutesLLM(t *testing.T) {
	m := ssetest.NewMock(t, readScript(t, "routes.mock"))
	post := func(key, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, m.URL+"/v1/chat/completions", strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := m.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := post("test-key", `{"model":"m","stream": true}`)
	var text strings.Builder
	for e, err := range sse.NewDecoder(resp.Body).Events() {
		if err != nil {
			t.Fatal(err)
		}
		if e.Data == "[DONE]" {
			break
		}
		text.WriteString(strings.TrimSuffix(strings.SplitAfter(e.Data, `"content":"`)[1], `"}}]}`))
	}
	if text.String() != "Hello" {
		t.Errorf("assembled %q; want Hello", text.String())
	}
	if resp := post("", `{"stream":true}`); resp.StatusCode != 401 {
		t.Errorf("without the key: got %d; want 401", resp.StatusCode)
	}
	if resp := post("test-key", `{"stream":false}`); resp.StatusCode != 401 {
		t.Errorf("a body that does not match: got %d; want the next route's 401", resp.StatusCode)
	}
	resp2, err := m.Client().Get(m.URL + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != 404 || !strings.Contains(string(b), "no route") {
		t.Errorf("an unknown path: got %d %q; want 404 naming the missing route", resp2.StatusCode, b)
	}
}
