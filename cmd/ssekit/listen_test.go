package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
)

// streamOf returns a handler that answers with body as an event stream and
// ends it.
func streamOf(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, body)
	})
}

func TestListenHumanOutput(t *testing.T) {
	const wire = ": hello\n" +
		"retry: 2500\n" +
		"id: 7\n" +
		`data: {"a":1,"b":[true,null]}` + "\n\n" +
		"event: update\ndata: line one\ndata: line two\n\n" +
		"data:\n\n" +
		"data: bell\a and tab\t\n\n" +
		"data: unterminated, not dispatched\n"
	const want = "03:04:05.250  : hello\n\n" +
		"03:04:05.500  +500ms  message  id=7  retry=2500ms\n" +
		"  {\n" +
		"    \"a\": 1,\n" +
		"    \"b\": [\n" +
		"      true,\n" +
		"      null\n" +
		"    ]\n" +
		"  }\n\n" +
		"03:04:05.750  +250ms  update  id=7\n  line one\n  line two\n\n" +
		"03:04:06.000  +250ms  message  id=7\n  (empty data)\n\n" +
		"03:04:06.250  +250ms  message  id=7\n  bell\\x07 and tab\t\n\n"
	servers(t, streamOf(wire), func(t *testing.T, srv *httptest.Server, m *Main) {
		m.Now = fakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 250*time.Millisecond)
		got := run(t, m, "listen", "--no-reconnect", srv.URL)
		if got.code != 0 {
			t.Errorf("exit code %d; want 0", got.code)
		}
		if got.stdout != want {
			t.Errorf("stdout:\n%s\nwant:\n%s", got.stdout, want)
		}
		proto := "HTTP/1.1"
		if strings.HasPrefix(srv.URL, "https:") {
			proto = "HTTP/2.0"
		}
		wantErr := fmt.Sprintf("ssekit listen: connected to %s (%s 200 OK)\nssekit listen: the server ended the stream\n", srv.URL, proto)
		if got.stderr != wantErr {
			t.Errorf("stderr %q; want %q", got.stderr, wantErr)
		}
	})
}

func TestListenColor(t *testing.T) {
	srv := httptest.NewServer(streamOf("id: 1\ndata: hi\n\n"))
	t.Cleanup(srv.Close)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	m, _, _ := testMain()
	m.Now = fakeClock(start, time.Second)
	got := run(t, m, "listen", "--no-reconnect", "--color", "always", srv.URL)
	want := "\x1b[2m03:04:06.000  +1s\x1b[0m  \x1b[1;36mmessage\x1b[0m  \x1b[33mid=1\x1b[0m\n  hi\n\n"
	if got.stdout != want {
		t.Errorf("--color always: stdout %q; want %q", got.stdout, want)
	}

	// stdout is not a terminal here, so auto means no colour.
	m, _, _ = testMain()
	m.Now = fakeClock(start, time.Second)
	got = run(t, m, "listen", "--no-reconnect", srv.URL)
	if want := "03:04:06.000  +1s  message  id=1\n  hi\n\n"; got.stdout != want {
		t.Errorf("--color auto: stdout %q; want %q", got.stdout, want)
	}
}

func TestListenJSON(t *testing.T) {
	const wire = ": comments are not events\n" +
		"data: <b>&</b> \"quoted\" é\n\n" +
		"id: 42\nevent: delta\nretry: 0\ndata: a\ndata: b\n\n" +
		"retry: 1500\ndata: {\"json\": \"stays as a string\"}\n\n"
	const want = `{"type":"message","data":"<b>&</b> \"quoted\" é","id":""}` + "\n" +
		`{"type":"delta","data":"a\nb","id":"42","retry":0}` + "\n" +
		`{"type":"message","data":"{\"json\": \"stays as a string\"}","id":"42","retry":1500}` + "\n"
	servers(t, streamOf(wire), func(t *testing.T, srv *httptest.Server, m *Main) {
		got := run(t, m, "listen", "--json", "--no-reconnect", srv.URL)
		if got.code != 0 {
			t.Errorf("exit code %d; want 0 (stderr %q)", got.code, got.stderr)
		}
		if got.stdout != want {
			t.Errorf("stdout:\n%s\nwant:\n%s", got.stdout, want)
		}
	})
}

// vector is one case of testdata/sse-vectors.json.
type vector struct {
	Name   string `json:"name"`
	Input  string `json:"input"`
	Events []struct {
		Type string `json:"type"`
		Data string `json:"data"`
		ID   string `json:"id"`
	} `json:"events"`
	Retry *int64 `json:"retry"`
}

// TestListenVectors is an acceptance test: every conformance vector, served
// as a stream, comes out of "listen --json --no-reconnect" as exactly the
// events a browser dispatches.
func TestListenVectors(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/sse-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []vector
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors")
	}
	mux := http.NewServeMux()
	for i, v := range vectors {
		mux.Handle(fmt.Sprintf("/%d", i), streamOf(v.Input))
	}
	servers(t, mux, func(t *testing.T, srv *httptest.Server, m *Main) {
		for i, v := range vectors {
			t.Run(v.Name, func(t *testing.T) {
				m, _, _ := testMain()
				m.HTTPClient = srv.Client()
				got := run(t, m, "listen", "--json", "--no-reconnect", fmt.Sprintf("%s/%d", srv.URL, i))
				if got.code != 0 {
					t.Fatalf("exit code %d; want 0 (stderr %q)", got.code, got.stderr)
				}
				lines := strings.SplitAfter(got.stdout, "\n")
				if lines[len(lines)-1] == "" {
					lines = lines[:len(lines)-1]
				}
				if len(lines) != len(v.Events) {
					t.Fatalf("got %d events:\n%s\nwant %d: %+v", len(lines), got.stdout, len(v.Events), v.Events)
				}
				for j, line := range lines {
					want := v.Events[j]
					var fields map[string]any
					if err := json.Unmarshal([]byte(line), &fields); err != nil {
						t.Fatalf("event %d: %q is not JSON: %v", j, line, err)
					}
					for k := range fields {
						if k != "type" && k != "data" && k != "id" && (k != "retry" || v.Retry == nil) {
							t.Errorf("event %d: unexpected key %q in %s", j, k, line)
						}
					}
					if fields["type"] != want.Type || fields["data"] != want.Data || fields["id"] != want.ID {
						t.Errorf("event %d: got %s; want type %q, data %q, id %q", j, strings.TrimSpace(line), want.Type, want.Data, want.ID)
					}
					if v.Retry == nil {
						// No retry key: the line must be exactly the contract's object.
						var b bytes.Buffer
						enc := json.NewEncoder(&b)
						enc.SetEscapeHTML(false)
						enc.Encode(struct { // the DESIGN.md contract's object, in its order
							Type string `json:"type"`
							Data string `json:"data"`
							ID   string `json:"id"`
						}{want.Type, want.Data, want.ID})
						if line != b.String() {
							t.Errorf("event %d: line %q; want %q", j, line, b.String())
						}
					}
				}
			})
		}
	})
}

func TestListenFailures(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "{\"error\":\n  \"no such stream\"}\n")
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<p>not a stream</p>")
	})
	mux.HandleFunc("/untyped", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // no sniffing either
		w.Write(nil)
	})
	mux.HandleFunc("/done", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/forever", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	refused := "http://" + e2etest.FreeAddr(t) + "/events" // nothing listens there

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // the last line of stderr
	}{
		{"404", []string{srv.URL + "/missing"}, 1,
			"ssekit listen: " + srv.URL + "/missing: 404 Not Found: {\"error\": \"no such stream\"}"},
		{"404 without reconnect", []string{"--no-reconnect", srv.URL + "/missing"}, 1,
			"ssekit listen: " + srv.URL + "/missing: 404 Not Found: {\"error\": \"no such stream\"}"},
		{"wrong content type", []string{srv.URL + "/html"}, 1,
			"ssekit listen: " + srv.URL + "/html: Content-Type is \"text/html; charset=utf-8\"; want text/event-stream"},
		{"no content type", []string{srv.URL + "/untyped"}, 1,
			"ssekit listen: " + srv.URL + "/untyped: response has no Content-Type; want text/event-stream"},
		{"connection refused", []string{refused}, 1,
			"ssekit listen: cannot connect to " + refused + ": dial tcp " + strings.TrimPrefix(strings.TrimSuffix(refused, "/events"), "http://") + ": connect: connection refused"},
		{"connection refused without reconnect", []string{"--no-reconnect", refused}, 1,
			"ssekit listen: cannot connect to " + refused + ": dial tcp " + strings.TrimPrefix(strings.TrimSuffix(refused, "/events"), "http://") + ": connect: connection refused"},
		{"204 ends cleanly", []string{srv.URL + "/done"}, 0,
			"ssekit listen: the server answered 204 No Content: the stream is over"},
		{"timeout", []string{"--timeout", "200ms", srv.URL + "/forever"}, exitTimeout,
			"ssekit listen: timed out after 200ms (1 event)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := testMain()
			got := run(t, m, append([]string{"listen", "--json"}, tt.args...)...)
			if got.code != tt.code {
				t.Errorf("exit code %d; want %d", got.code, tt.code)
			}
			lines := strings.Split(strings.TrimSuffix(got.stderr, "\n"), "\n")
			if last := lines[len(lines)-1]; last != tt.stderr {
				t.Errorf("last stderr line:\n%q\nwant:\n%q", last, tt.stderr)
			}
			if tt.code == 1 && len(lines) != 1 {
				t.Errorf("stderr has %d lines; want 1:\n%s", len(lines), got.stderr)
			}
		})
	}
}

// request is what a test server saw of one request.
type request struct {
	method, body, contentType, auth, trace, lastEventID string
}

// recorder is a server that records its requests and answers each with
// the next of its responses (the last one repeats).
type recorder struct {
	mu        sync.Mutex
	requests  []request // guarded by mu
	responses []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.requests = append(rec.requests, request{
		method:      r.Method,
		body:        string(body),
		contentType: r.Header.Get("Content-Type"),
		auth:        r.Header.Get("Authorization"),
		trace:       r.Header.Get("X-Trace"),
		lastEventID: r.Header.Get("Last-Event-ID"),
	})
	resp := rec.responses[min(len(rec.requests), len(rec.responses))-1]
	rec.mu.Unlock()
	if resp == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, resp)
}

func (rec *recorder) seen() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.requests...)
}

func TestListenRequest(t *testing.T) {
	dir := t.TempDir()
	bodyFile := filepath.Join(dir, "body.json")
	const payload = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	if err := os.WriteFile(bodyFile, []byte(payload), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  request
	}{
		{"POST from a file with headers",
			[]string{"-X", "POST", "-d", "@" + bodyFile, "-H", "Authorization: Bearer sk-test", "-H", "X-Trace:  abc ", "-H", "Content-Type: application/json; charset=utf-8"}, "",
			request{method: "POST", body: payload, contentType: "application/json; charset=utf-8", auth: "Bearer sk-test", trace: "abc"}},
		{"-d implies POST and JSON", []string{"-d", payload}, "",
			request{method: "POST", body: payload, contentType: "application/json"}},
		{"-d of a form", []string{"-d", "q=1&r=2"}, "",
			request{method: "POST", body: "q=1&r=2", contentType: "application/x-www-form-urlencoded"}},
		{"-d @- reads stdin", []string{"-X", "PUT", "-d", "@-"}, "from stdin",
			request{method: "PUT", body: "from stdin", contentType: "application/x-www-form-urlencoded"}},
		{"GET with --last-event-id", []string{"--last-event-id", "41"}, "",
			request{method: "GET", lastEventID: "41"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{responses: []string{"data: ok\n\n"}}
			servers(t, rec, func(t *testing.T, srv *httptest.Server, m *Main) {
				rec.mu.Lock()
				rec.requests = nil
				rec.mu.Unlock()
				m.Stdin = strings.NewReader(tt.stdin)
				args := append([]string{"listen", "--json", "--no-reconnect"}, tt.args...)
				got := run(t, m, append(args, srv.URL)...)
				if got.code != 0 {
					t.Fatalf("exit code %d; want 0 (stderr %q)", got.code, got.stderr)
				}
				seen := rec.seen()
				if len(seen) != 1 || seen[0] != tt.want {
					t.Errorf("server saw %+v; want [%+v]", seen, tt.want)
				}
				wantID := tt.want.lastEventID
				if want := `{"type":"message","data":"ok","id":"` + wantID + `"}` + "\n"; got.stdout != want {
					t.Errorf("stdout %q; want %q", got.stdout, want)
				}
			})
		})
	}
}

// TestListenReconnect reconnects as a browser does: after the server's
// retry time, with Last-Event-ID, re-sending the POST body, until 204.
func TestListenReconnect(t *testing.T) {
	rec := &recorder{responses: []string{
		"retry: 10\nid: 1\ndata: one\n\n",
		"id: 2\ndata: two\n\n",
		"", // 204
	}}
	servers(t, rec, func(t *testing.T, srv *httptest.Server, m *Main) {
		rec.mu.Lock()
		rec.requests = nil
		rec.mu.Unlock()
		got := run(t, m, "listen", "--json", "-d", "prompt", srv.URL)
		if got.code != 0 {
			t.Errorf("exit code %d; want 0 (stderr %q)", got.code, got.stderr)
		}
		want := `{"type":"message","data":"one","id":"1","retry":10}` + "\n" +
			`{"type":"message","data":"two","id":"2"}` + "\n"
		if got.stdout != want {
			t.Errorf("stdout %q; want %q", got.stdout, want)
		}
		connected := strings.SplitAfter(got.stderr, "\n")[0]
		wantErr := connected +
			"ssekit listen: the server ended the stream; reconnecting in 10ms with Last-Event-ID \"1\"\n" +
			connected +
			"ssekit listen: the server ended the stream; reconnecting in 10ms with Last-Event-ID \"2\"\n" +
			"ssekit listen: the server answered 204 No Content: the stream is over\n"
		if got.stderr != wantErr {
			t.Errorf("stderr:\n%s\nwant:\n%s", got.stderr, wantErr)
		}
		seen := rec.seen()
		wantSeen := []request{
			{method: "POST", body: "prompt", contentType: "application/x-www-form-urlencoded"},
			{method: "POST", body: "prompt", contentType: "application/x-www-form-urlencoded", lastEventID: "1"},
			{method: "POST", body: "prompt", contentType: "application/x-www-form-urlencoded", lastEventID: "2"},
		}
		if fmt.Sprint(seen) != fmt.Sprint(wantSeen) {
			t.Errorf("server saw %+v; want %+v", seen, wantSeen)
		}
	})
}

func TestListenMaxEvents(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 10_000 { // bounded; the client leaves after 3
			if _, err := fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	servers(t, h, func(t *testing.T, srv *httptest.Server, m *Main) {
		got := run(t, m, "listen", "--json", "--max-events", "3", srv.URL)
		if got.code != 0 {
			t.Errorf("exit code %d; want 0 (stderr %q)", got.code, got.stderr)
		}
		want := `{"type":"message","data":"event 0","id":"0"}` + "\n" +
			`{"type":"message","data":"event 1","id":"1"}` + "\n" +
			`{"type":"message","data":"event 2","id":"2"}` + "\n"
		if got.stdout != want {
			t.Errorf("stdout %q; want %q", got.stdout, want)
		}
	})
}

// TestListenInterrupted stops quietly with exit code 130 when its context
// ends, as on Ctrl-C.
func TestListenInterrupted(t *testing.T) {
	connected := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		close(connected)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)

	m, _, stderr := testMain()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() { done <- m.Exit(m.Run(ctx, []string{"listen", srv.URL})) }()
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatal("listen did not connect")
	}
	poll.Until(t, "the connected line on stderr", 30*time.Second, func() bool { return strings.Contains(stderr.String(), "connected") })
	cancel()
	select {
	case code := <-done:
		if code != exitInterrupted {
			t.Errorf("exit code %d; want %d", code, exitInterrupted)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("listen did not stop when its context ended")
	}
	if strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("stderr %q; want only the connected line", stderr.String())
	}
}
