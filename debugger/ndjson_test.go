package debugger

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ssekit/sse"
)

// TestNDJSONClient: an NDJSON response reads as one event per line,
// whatever its line ends and however its writes cut it; a CR cannot make
// a field other than data; other responses pass unchanged.
func TestNDJSONClient(t *testing.T) {
	tests := []struct {
		name, contentType string
		parts             []string
		want              []string // event data
	}{
		{"LF", "application/x-ndjson", []string{"{\"a\":1}\n{\"a\":2}\n"}, []string{`{"a":1}`, `{"a":2}`}},
		{"CRLF split across writes", "application/jsonl; charset=utf-8", []string{"{\"a\":1}\r", "\n\n{\"a\"", ":2}"}, []string{`{"a":1}`, `{"a":2}`}},
		{"a CR is no field", "application/x-ndjson", []string{"x\rid: 9\revent: e\n"}, []string{"x\nid: 9\nevent: e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				for _, p := range tt.parts {
					io.WriteString(w, p)
					http.NewResponseController(w).Flush()
				}
			}))
			t.Cleanup(srv.Close)
			req, _ := http.NewRequest("GET", srv.URL, nil)
			es := (&sse.Client{HTTPClient: NDJSONClient(srv.Client()), NoReconnect: true}).Connect(req)
			defer es.Close()
			var got []string
			for ev, err := range es.Events() {
				if err != nil {
					t.Fatal(err)
				}
				if ev.Type != "message" || ev.ID != "" {
					t.Errorf("event %+v; want a message without id", ev)
				}
				got = append(got, ev.Data)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("events %q; want %q", got, tt.want)
			}
		})
	}
	if IsNDJSON("application/json") || IsNDJSON("text/event-stream") || !IsNDJSON("application/x-ndjson") {
		t.Error("IsNDJSON misclassifies")
	}
}

// TestSessionNDJSON: the debugger's page gets an NDJSON stream as event
// records, the open record naming the original Content-Type.
func TestSessionNDJSON(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, "{\"n\":1}\n{\"n\":2}\n")
	}))
	t.Cleanup(upstream.Close)
	recs := runSession(t, RequestSpec{URL: upstream.URL, NoReconnect: true}, nil)
	var data []string
	from := ""
	for _, r := range recs {
		switch r.Kind {
		case KindEvent:
			data = append(data, r.Data)
		case KindOpen:
			from = r.Header.Get(ConvertedFromHeader)
		}
	}
	if strings.Join(data, "|") != `{"n":1}|{"n":2}` || from != "application/x-ndjson" {
		t.Errorf("events %q, converted from %q; want the two lines from application/x-ndjson", data, from)
	}
}
