package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The scenario groups of the public suite (launchdarkly/sse-contract-tests),
// played against the service: basic parsing, line feeds, BOM, comments,
// HTTP behaviour, reconnection, event-type listeners, shutdown by 204.

const bom = "\xEF\xBB\xBF"

func TestStatus(t *testing.T) {
	h := newHarness(t)
	resp, err := http.Get(h.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Name         string   `json:"name"`
		Capabilities []string `json:"capabilities"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /: status %d, %v", resp.StatusCode, err)
	}
	want := []string{"bom", "comments", "headers", "last-event-id", "post", "report", "read-timeout",
		"restart", "event-type-listeners", "server-directed-shutdown-request"}
	if got.Name == "" || !reflect.DeepEqual(got.Capabilities, want) {
		t.Errorf("GET /: got %+v; want a name and capabilities %q", got, want)
	}
}

func TestStopService(t *testing.T) {
	h := newHarness(t)
	if resp := h.do(t, http.MethodDelete, h.url+"/", nil); resp.StatusCode/100 != 2 {
		t.Errorf("DELETE /: status %d; want 2xx", resp.StatusCode)
	}
	select {
	case <-h.svc.Done():
	case <-time.After(awaitTimeout):
		t.Fatal("Done not closed after DELETE /")
	}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, []string{"--addr", "127.0.0.1:0"}, io.Discard) }()
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("run: got %v; want nil after the context ends", err)
	}
	if err := run(t.Context(), []string{"--bogus"}, io.Discard); err == nil {
		t.Error("run with an unknown flag: got nil; want an error")
	}
}

func TestCreateRejectsBadParams(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		body string
	}{
		{"not JSON", `{`},
		{"no streamUrl", `{"callbackUrl":"http://127.0.0.1:1/cb"}`},
		{"no callbackUrl", `{"streamUrl":"http://127.0.0.1:1/s"}`},
		{"streamUrl not http", `{"streamUrl":"ftp://x/s","callbackUrl":"http://127.0.0.1:1/cb"}`},
		{"negative initialDelayMs", `{"streamUrl":"http://127.0.0.1:1/s","callbackUrl":"http://127.0.0.1:1/cb","initialDelayMs":-1}`},
		{"negative readTimeoutMs", `{"streamUrl":"http://127.0.0.1:1/s","callbackUrl":"http://127.0.0.1:1/cb","readTimeoutMs":-1}`},
		{"bad method", `{"streamUrl":"http://127.0.0.1:1/s","callbackUrl":"http://127.0.0.1:1/cb","method":"GE T"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp := h.do(t, http.MethodPost, h.url+"/", tt.body); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status: got %d; want 400", resp.StatusCode)
			}
		})
	}
}

func TestStreamResource(t *testing.T) {
	h := newHarness(t)
	_, _, _, loc := startClient(t, h, createParams{})
	if resp := h.do(t, http.MethodPost, loc, `{"command":"sing"}`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown command: status %d; want 400", resp.StatusCode)
	}
	if resp := h.do(t, http.MethodPost, loc, `{"command":"listen"}`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("listen without a type: status %d; want 400", resp.StatusCode)
	}
	if resp := h.do(t, http.MethodPost, h.url+"/streams/999", `{"command":"restart"}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("command to an unknown stream: status %d; want 404", resp.StatusCode)
	}
	if resp := h.do(t, http.MethodDelete, loc, nil); resp.StatusCode/100 != 2 {
		t.Errorf("DELETE stream: status %d; want 2xx", resp.StatusCode)
	}
	if resp := h.do(t, http.MethodDelete, loc, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE stream again: status %d; want 404", resp.StatusCode)
	}
}

// parsingCase is one input and the events it must produce.
type parsingCase struct {
	name   string
	input  string
	listen []string
	want   []callbackEvent
}

// runParsing sends each case whole and in 1- and 2-byte chunks.
func runParsing(t *testing.T, cases []parsingCase) {
	h := newHarness(t)
	for _, tc := range cases {
		for _, chunk := range []int{0, 1, 2} {
			name := "one chunk"
			if chunk > 0 {
				name = fmt.Sprintf("%d-byte chunks", chunk)
			}
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				_, conn, cb, loc := startClient(t, h, createParams{})
				for _, typ := range tc.listen {
					h.listen(t, loc, typ)
				}
				if chunk == 0 {
					conn.send(t, tc.input)
				} else {
					conn.sendInChunks(t, tc.input, chunk)
				}
				cb.requireEvents(t, tc.want...)
			})
		}
	}
}

func TestBasicParsing(t *testing.T) {
	var many strings.Builder
	var manyWant []callbackEvent
	for i := range 100 {
		fmt.Fprintf(&many, "data: message %d\n\n", i)
		manyWant = append(manyWant, callbackEvent{Data: fmt.Sprintf("message %d", i)})
	}
	greeting := []string{"greeting"}
	runParsing(t, []parsingCase{
		{"one-line message", "data: Hello\n\n", nil, []callbackEvent{{Data: "Hello"}}},
		{"two messages", "data: Hello\n\ndata: World\n\n", nil, []callbackEvent{{Data: "Hello"}, {Data: "World"}}},
		{"two-line message", "data: Hello\ndata:World\n\n", nil, []callbackEvent{{Data: "Hello\nWorld"}}},
		{"empty data", "data:\n\n", nil, []callbackEvent{{Data: ""}}},
		{"specific type", "event: greeting\ndata: Hello\n\n", greeting, []callbackEvent{{Type: "greeting", Data: "Hello"}}},
		{"default type", "data: Hello\n\n", nil, []callbackEvent{{Type: "message", Data: "Hello"}}},
		{"ID", "id: abc\ndata: Hello\n\n", nil, []callbackEvent{{ID: "abc", Data: "Hello"}}},
		{"type and ID", "event: greeting\nid: abc\ndata: Hello\n\n", greeting, []callbackEvent{{Type: "greeting", ID: "abc", Data: "Hello"}}},
		{"ID with NUL ignored", "id: a\x00bc\ndata: Hello\n\n", nil, []callbackEvent{{Data: "Hello"}}},
		{"last ID persists", "id: abc\ndata: first\n\ndata: second\n\n", nil, []callbackEvent{{ID: "abc", Data: "first"}, {ID: "abc", Data: "second"}}},
		{"last ID reset by empty id", "id: abc\ndata: first\n\nid: \ndata: second\n\n", nil, []callbackEvent{{ID: "abc", Data: "first"}, {Data: "second"}}},
		{"fields in reverse order", "data: Hello\nid: abc\nevent: greeting\n\n", greeting, []callbackEvent{{Type: "greeting", ID: "abc", Data: "Hello"}}},
		{"unknown field ignored", "event: greeting\ncolor: blue\ndata: Hello\n\n", greeting, []callbackEvent{{Type: "greeting", Data: "Hello"}}},
		{"no space after colon", "event:greeting\ndata:Hello\n\n", greeting, []callbackEvent{{Type: "greeting", Data: "Hello"}}},
		{"only one space stripped", "event:  greeting\ndata:  Hello\n\n", []string{" greeting"}, []callbackEvent{{Type: " greeting", Data: " Hello"}}},
		{"field without colon", "data\n\ndata\ndata\n\n", nil, []callbackEvent{{Data: ""}, {Data: "\n"}}},
		{"multi-byte characters", "data: €豆腐\n\n", nil, []callbackEvent{{Data: "€豆腐"}}},
		{"many messages", many.String(), nil, manyWant},
	})
}

func TestLineFeeds(t *testing.T) {
	var cases []parsingCase
	for _, term := range []struct{ name, s string }{{"LF", "\n"}, {"CRLF", "\r\n"}, {"CR", "\r"}} {
		n := term.s
		cases = append(cases,
			parsingCase{term.name + " one-line event", "data: event 1" + n + n, nil,
				[]callbackEvent{{Data: "event 1"}}},
			parsingCase{term.name + " one-line + two-line event", "data: event 1" + n + n + "data: event 2 line 1" + n + "data: event 2 line 2" + n + n, nil,
				[]callbackEvent{{Data: "event 1"}, {Data: "event 2 line 1\nevent 2 line 2"}}},
			parsingCase{term.name + " empty first line", "data:" + n + "data: line2" + n + "data: line3" + n + n, nil,
				[]callbackEvent{{Data: "\nline2\nline3"}}},
			parsingCase{term.name + " empty middle line", "data: line1" + n + "data:" + n + "data: line3" + n + n, nil,
				[]callbackEvent{{Data: "line1\n\nline3"}}},
			parsingCase{term.name + " extra empty lines", "data: event 1" + n + n + n + n + "data: event 2" + n + n, nil,
				[]callbackEvent{{Data: "event 1"}, {Data: "event 2"}}},
		)
	}
	runParsing(t, cases)
}

func TestCRLFSplitAcrossChunks(t *testing.T) {
	h := newHarness(t)
	_, conn, cb, _ := startClient(t, h, createParams{})
	for _, chunk := range []string{"data: Hello\r", "\ndata: World\r", "\n\r\ndata: OK\r", "\n", "\r", "\n"} {
		conn.send(t, chunk)
	}
	cb.requireEvents(t, callbackEvent{Data: "Hello\nWorld"}, callbackEvent{Data: "OK"})
}

func TestBOM(t *testing.T) {
	runParsing(t, []parsingCase{
		{"stripped", bom + "data: Hello\n\n", nil, []callbackEvent{{Data: "Hello"}}},
		{"stripped before type and ID", bom + "event: greeting\nid: abc\ndata: Hello\n\n", []string{"greeting"},
			[]callbackEvent{{Type: "greeting", ID: "abc", Data: "Hello"}}},
		{"only the first BOM", bom + "data: " + bom + "Hello\n\n", nil, []callbackEvent{{Data: bom + "Hello"}}},
		{"later BOM is data", "data: First\n\ndata: " + bom + "Second\n\n", nil, []callbackEvent{{Data: "First"}, {Data: bom + "Second"}}},
		{"multi-line data", bom + "data: Line1\ndata: Line2\n\n", nil, []callbackEvent{{Data: "Line1\nLine2"}}},
		{"empty data", bom + "data:\n\n", nil, []callbackEvent{{Data: ""}}},
	})
	t.Run("split byte by byte", func(t *testing.T) {
		h := newHarness(t)
		_, conn, cb, _ := startClient(t, h, createParams{})
		for _, b := range []string{"\xEF", "\xBB", "\xBF", ":comment\ndata: Hello\n\n"} {
			conn.send(t, b)
		}
		cb.requireComment(t, "comment")
		cb.requireEvents(t, callbackEvent{Data: "Hello"})
	})
}

func TestComments(t *testing.T) {
	h := newHarness(t)
	_, conn, cb, _ := startClient(t, h, createParams{})
	conn.send(t, ":Hello\n")
	cb.requireComment(t, "Hello")
	conn.send(t, ":World\n")
	cb.requireComment(t, "World")
	conn.send(t, ": spaced\n:\ndata: Hello\n\n:after\n")
	cb.requireComment(t, " spaced") // the text after the colon, as is
	cb.requireComment(t, "")
	cb.requireEvents(t, callbackEvent{Data: "Hello"})
	cb.requireComment(t, "after")
}

func TestHTTPDefaultMethodAndHeaders(t *testing.T) {
	h := newHarness(t)
	_, conn, _, _ := startClient(t, h, createParams{})
	r := conn.req
	if r.Method != http.MethodGet || r.Header.Get("Accept") != "text/event-stream" ||
		r.Header.Get("Cache-Control") != "no-cache" || len(r.Header.Values("Last-Event-Id")) != 0 {
		t.Errorf("first request: got %s %v; want GET with Accept, Cache-Control and no Last-Event-ID", r.Method, r.Header)
	}
}

func TestHTTPCustomHeaders(t *testing.T) {
	h := newHarness(t)
	_, conn, _, _ := startClient(t, h, createParams{Headers: map[string]string{"header-name-1": "value-1", "header-name-2": "value-2"}})
	if got := conn.req.Header; got.Get("Header-Name-1") != "value-1" || got.Get("Header-Name-2") != "value-2" {
		t.Errorf("headers: got %v; want the custom ones", got)
	}
}

func TestHTTPRequestWithBody(t *testing.T) {
	const body = `{"hello": "world"}`
	for _, method := range []string{"POST", "REPORT"} {
		t.Run(method, func(t *testing.T) {
			h := newHarness(t)
			_, conn, _, _ := startClient(t, h, createParams{
				Method:  method,
				Body:    body,
				Headers: map[string]string{"content-type": "application/json; charset=utf-8"},
			})
			r := conn.req
			if r.Method != method || r.Body != body || r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("request: got %s %q %q; want %s with the JSON body", r.Method, r.Body, r.Header.Get("Content-Type"), method)
			}
		})
	}
}

func TestHTTPInitialLastEventID(t *testing.T) {
	h := newHarness(t)
	_, conn, _, _ := startClient(t, h, createParams{LastEventID: "abc"})
	if got := conn.req.Header.Get("Last-Event-Id"); got != "abc" {
		t.Errorf("Last-Event-ID: got %q; want abc", got)
	}
}

func TestHTTPRedirects(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprintf("follows %d", code), func(t *testing.T) {
			h := newHarness(t)
			s := newStreamServer(t)
			cb := newCallbacks(t)
			redirect := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, s.url, code)
			})
			h.create(t, createParams{StreamURL: redirect.url, CallbackURL: cb.url})
			s.await(t).send(t, "data: hello\n\n")
			cb.requireEvents(t, callbackEvent{Data: "hello"})
		})
		for _, location := range []string{"empty", "missing"} {
			t.Run(fmt.Sprintf("%s Location with %d", location, code), func(t *testing.T) {
				h := newHarness(t)
				cb := newCallbacks(t)
				redirect := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
					if location == "empty" {
						w.Header()["Location"] = []string{""}
					}
					w.WriteHeader(code)
				})
				loc := h.create(t, createParams{StreamURL: redirect.url, CallbackURL: cb.url})
				cb.requireError(t)
				h.clientDone(t, loc)
				if n := redirect.count(); n != 1 {
					t.Errorf("requests: got %d; want 1", n)
				}
			})
		}
	}
}

func TestHTTPStatusErrors(t *testing.T) {
	for _, code := range []int{204, 400, 401, 404, 500, 503} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			h := newHarness(t)
			cb := newCallbacks(t)
			e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
			loc := h.create(t, createParams{StreamURL: e.url, CallbackURL: cb.url, InitialDelayMS: ms(0)})
			msg := cb.requireError(t)
			if !strings.Contains(msg, fmt.Sprint(code)) {
				t.Errorf("error %q does not name the status %d", msg, code)
			}
			// The client stopped for good after one request: no reconnection
			// can come (server-directed-shutdown-request for 204).
			h.clientDone(t, loc)
			if n := e.count(); n != 1 {
				t.Errorf("requests: got %d; want exactly 1", n)
			}
		})
	}
}

func TestHTTPWrongContentType(t *testing.T) {
	h := newHarness(t)
	cb := newCallbacks(t)
	e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "data: hello\n\n")
	})
	loc := h.create(t, createParams{StreamURL: e.url, CallbackURL: cb.url, InitialDelayMS: ms(0)})
	cb.requireError(t)
	h.clientDone(t, loc)
	if n := e.count(); n != 1 {
		t.Errorf("requests: got %d; want exactly 1", n)
	}
}

func TestReconnectionRestart(t *testing.T) {
	h := newHarness(t)
	s, conn, cb, loc := startClient(t, h, createParams{InitialDelayMS: ms(0)})
	conn.send(t, "id: 1\ndata: Hello\n\n")
	cb.requireEvents(t, callbackEvent{ID: "1", Data: "Hello"})
	h.restart(t, loc)
	conn2 := s.await(t)
	if got := conn2.req.Header.Get("Last-Event-Id"); got != "1" {
		t.Errorf("Last-Event-ID after restart: got %q; want 1", got)
	}
	conn2.send(t, "data: Thanks\n\n")
	cb.requireEvents(t, callbackEvent{ID: "1", Data: "Thanks"}) // no error callback in between
}

func TestReconnectionSendsLastEventID(t *testing.T) {
	h := newHarness(t)
	s, conn, cb, _ := startClient(t, h, createParams{InitialDelayMS: ms(0)})
	if v := conn.req.Header.Values("Last-Event-Id"); len(v) != 0 {
		t.Errorf("first request: Last-Event-ID %q; want none", v)
	}
	conn.send(t, "id: abc\ndata: Hello\n\ndata: World\n\n")
	cb.requireEvents(t, callbackEvent{ID: "abc", Data: "Hello"}, callbackEvent{ID: "abc", Data: "World"})
	conn.breakConnection(t)
	conn2 := s.await(t)
	if got := conn2.req.Header.Get("Last-Event-Id"); got != "abc" {
		t.Errorf("reconnection: Last-Event-ID %q; want abc", got)
	}
	cb.requireError(t) // the broken connection
	conn2.send(t, "data: again\n\n")
	cb.requireEvents(t, callbackEvent{ID: "abc", Data: "again"})
}

func TestReconnectionAfterCleanEnd(t *testing.T) {
	h := newHarness(t)
	s, conn, cb, _ := startClient(t, h, createParams{InitialDelayMS: ms(0)})
	conn.send(t, "id: 1\ndata: a\n\nid: 2\ndata: unterminated\n")
	cb.requireEvents(t, callbackEvent{ID: "1", Data: "a"})
	conn.do(t, func(http.ResponseWriter) bool { return false }) // end the body cleanly
	conn2 := s.await(t)
	if got := conn2.req.Header.Get("Last-Event-Id"); got != "1" {
		t.Errorf("reconnection: Last-Event-ID %q; want 1 (the unterminated block's id does not count)", got)
	}
	conn2.send(t, "data: b\n\n")
	cb.requireEvents(t, callbackEvent{ID: "1", Data: "b"}) // a clean end is not an error
}

func TestReconnectionResendsBody(t *testing.T) {
	const body = `{"hello": "world"}`
	h := newHarness(t)
	s, conn, _, _ := startClient(t, h, createParams{
		InitialDelayMS: ms(0),
		Method:         "POST",
		Body:           body,
		Headers:        map[string]string{"content-type": "application/json; charset=utf-8"},
	})
	conn.breakConnection(t)
	conn2 := s.await(t)
	for i, r := range []requestInfo{conn.req, conn2.req} {
		if r.Method != "POST" || r.Body != body {
			t.Errorf("request %d: got %s %q; want POST %q", i, r.Method, r.Body, body)
		}
	}
}

func TestReconnectionReadTimeout(t *testing.T) {
	h := newHarness(t)
	s, conn, cb, _ := startClient(t, h, createParams{InitialDelayMS: ms(0), ReadTimeoutMS: ms(200)})
	conn.send(t, "data: Hello\n\n")
	cb.requireEvents(t, callbackEvent{Data: "Hello"})
	cb.requireError(t) // then silence: the read timeout
	s.await(t)
}

func TestEventTypeListeners(t *testing.T) {
	h := newHarness(t)
	_, conn, cb, loc := startClient(t, h, createParams{})
	conn.send(t, "event: greeting\ndata: unheard\n\ndata: plain\n\n")
	cb.requireEvents(t, callbackEvent{Data: "plain"}) // no listener for greeting yet
	h.listen(t, loc, "greeting")
	conn.send(t, "event: greeting\ndata: heard\n\nevent: other\ndata: unheard\n\ndata: end\n\n")
	cb.requireEvents(t, callbackEvent{Type: "greeting", Data: "heard"}, callbackEvent{Data: "end"})
}

func TestClosedStreamStopsItsClient(t *testing.T) {
	h := newHarness(t)
	s, conn, cb, loc := startClient(t, h, createParams{InitialDelayMS: ms(0)})
	conn.send(t, "data: a\n\n")
	cb.requireEvents(t, callbackEvent{Data: "a"})
	h.svc.mu.Lock()
	c := h.svc.streams[loc[strings.LastIndexByte(loc, '/')+1:]]
	h.svc.mu.Unlock()
	if resp := h.do(t, http.MethodDelete, loc, nil); resp.StatusCode/100 != 2 {
		t.Fatalf("DELETE: status %d", resp.StatusCode)
	}
	select {
	case <-c.done:
	default:
		t.Error("client still running after DELETE returned")
	}
	select {
	case <-conn.done:
	case <-time.After(awaitTimeout):
		t.Error("stream connection still open after DELETE")
	}
	select {
	case extra := <-s.conns:
		t.Errorf("client reconnected after DELETE: %v", extra.req)
	default:
	}
}
