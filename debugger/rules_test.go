package debugger

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMergeRulesRefused: a path outside the subset is refused with
// ErrBadRule (the fixtures test assembles a made-up format with good ones).
func TestMergeRulesRefused(t *testing.T) {
	for _, bad := range []MergeRules{{}, {Text: "out.piece"}, {Text: "$.a[x]"}, {Text: "$.a['b"}, {Text: "$..a"},
		{Text: "$" + strings.Repeat(".a", maxPathSteps+1)}} {
		if err := (&Assembler{}).SetRules(&bad); !errors.Is(err, ErrBadRule) {
			t.Errorf("rules %+v: %v; want ErrBadRule", bad, err)
		}
	}
}

// TestSessionRules: the page's request may carry merge rules; a bad one is
// a 400 with the reason, a good one assembles the session's answer.
func TestSessionRules(t *testing.T) {
	s := New(Config{})
	srv := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); srv.Close() })
	resp, err := http.Post(srv.URL+"/api/sessions", "application/json", strings.NewReader(`{"url":"http://127.0.0.1:1/","llmRules":{"text":"nope"}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "bad merge rule") {
		t.Errorf("bad rules: %s %s; want 400 and the reason", resp.Status, body)
	}

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"o\":\"Hel\"}\n\ndata: {\"o\":\"lo\"}\n\n")
	}))
	t.Cleanup(upstream.Close)
	text := ""
	for _, r := range runSession(t, RequestSpec{URL: upstream.URL, NoReconnect: true, LLMRules: &MergeRules{Text: "$.o"}}, nil) {
		if r.LLM != nil {
			text += r.LLM.Text
		}
	}
	if text != "Hello" {
		t.Errorf("assembled %q; want Hello", text)
	}
}
