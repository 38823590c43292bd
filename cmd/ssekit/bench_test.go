package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/ssetest"
)

// benchHub is a tiny Mercure hub for the bench command's tests: exact
// topics, in-memory fan-out, and an HS256 key every request's bearer token
// must be signed with, granting publish and subscribe on "*".
type benchHub struct {
	key []byte

	mu   sync.Mutex // guards subs
	subs map[chan sse.Event][]string
}

func (h *benchHub) authorized(r *http.Request, claim string) bool {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	var claims struct {
		jwt.RegisteredClaims
		Mercure map[string][]string `json:"mercure"`
	}
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return h.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	return err == nil && slices.Contains(claims.Mercure[claim], "*")
}

func (h *benchHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if !h.authorized(r, "publish") {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		r.ParseForm()
		ev := sse.Event{ID: "x", Data: r.PostForm.Get("data")}
		h.mu.Lock()
		for ch, topics := range h.subs {
			if slices.Contains(topics, r.PostForm.Get("topic")) {
				ch <- ev
			}
		}
		h.mu.Unlock()
		w.Write([]byte("x"))
		return
	}
	if !h.authorized(r, "subscribe") {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	ch := make(chan sse.Event, 64)
	h.mu.Lock()
	h.subs[ch] = r.URL.Query()["topic"]
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}()
	st, err := sse.NewStream(w, r, sse.StreamConfig{})
	if err != nil {
		return
	}
	defer st.Close()
	for {
		select {
		case ev := <-ch:
			st.Send(ev)
		case <-st.Context().Done():
			return
		}
	}
}

func TestBench(t *testing.T) {
	h := &benchHub{key: []byte("bench-secret-0123456789abcdef0123456789"), subs: map[chan sse.Event][]string{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	hub := srv.URL + "/.well-known/mercure"

	t.Run("text", func(t *testing.T) {
		res := run(t, nil, "bench", "--hub", hub, "--jwt-key", "bench-secret-0123456789abcdef0123456789", "--subscribers", "20",
			"--hot-share", "0.5", "--updates", "10", "--rate", "0", "--quiet")
		if res.code != 0 {
			t.Fatalf("exit %d; stderr %q", res.code, res.stderr)
		}
		for _, want := range []string{"delivered     100 of 100 expected", "lost          0", "duplicated    0"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
			}
		}
		if res.stderr != "" {
			t.Errorf("stderr %q with --quiet; want nothing", res.stderr)
		}
	})
	t.Run("json", func(t *testing.T) {
		res := run(t, nil, "bench", "--hub", hub, "--jwt-key", "bench-secret-0123456789abcdef0123456789", "--subscribers", "4",
			"--all-active", "--updates", "5", "--rate", "1000", "--json")
		if res.code != 0 {
			t.Fatalf("exit %d; stderr %q", res.code, res.stderr)
		}
		var rep struct{ Expected, Delivered, Lost int }
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatalf("stdout is not one JSON object: %v\n%s", err, res.stdout)
		}
		if rep.Expected != 20 || rep.Delivered != 20 || rep.Lost != 0 {
			t.Errorf("expected %d, delivered %d, lost %d; want 20, 20, 0", rep.Expected, rep.Delivered, rep.Lost)
		}
		if !strings.Contains(res.stderr, "bench ") || !strings.Contains(res.stderr, "delivered 20/20") {
			t.Errorf("stderr %q: want progress lines ending with delivered 20/20", res.stderr)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		res := run(t, nil, "bench", "--hub", hub, "--jwt-key", "other-secret-0123456789abcdef0123456789", "--subscribers", "2", "--quiet")
		if res.code != 1 || !strings.Contains(res.stderr, "401") {
			t.Errorf("exit %d, stderr %q; want 1 and a 401", res.code, res.stderr)
		}
	})
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"remote hub", []string{"--hub", "http://192.0.2.1/.well-known/mercure"}, 1, "pass --allow-remote"},
		{"both tokens", []string{"--jwt", "a", "--jwt-key", "b"}, 2, "--jwt and --jwt-key exclude each other"},
		{"argument", []string{"http://127.0.0.1/"}, 2, "takes no arguments"},
		{"negative subscribers", []string{"--subscribers", "-1"}, 2, "subscribers must be between"},
		{"zero payload", []string{"--payload", "0"}, 2, "--payload must be above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, nil, append([]string{"bench"}, tt.args...)...)
			if res.code != tt.code || !strings.Contains(res.stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, tt.code, tt.stderr)
			}
		})
	}
	res := run(t, nil, "bench", "--help")
	if res.code != 0 || !strings.Contains(res.stdout, "--all-active") || !strings.Contains(res.stdout, "--allow-remote") {
		t.Errorf("bench --help: exit %d, stdout %q", res.code, res.stdout)
	}
}

// TestBenchStream runs bench's generic mode on mocks: a POST with a header
// and a body (the request flags of listen), exact counts in the text and
// JSON reports, and the exit codes.
func TestBenchStream(t *testing.T) {
	m := ssetest.NewMock(t, `
route POST /v1/stream
match header X-Key: k1
match body contains "prompt"
> data: a
>
> data: b
>
> data: c
>
hold
route GET /plain
header Content-Type: text/plain
> data: a
>
`)
	args := []string{"bench", "--url", m.URL + "/v1/stream", "-H", "X-Key: k1", "-d", `{"prompt":"hi"}`,
		"--clients", "4", "--connect-rate", "1000", "--events", "3", "--quiet"}
	t.Run("text", func(t *testing.T) {
		res := run(t, nil, args...)
		if res.code != 0 {
			t.Fatalf("exit %d; stderr %q", res.code, res.stderr)
		}
		for _, want := range []string{"connected      4 of 4; 4 completed", "attempts       4 (0 reconnects)",
			"status none; content type 0; network 0; other 0", "events         12: "} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		res := run(t, nil, append(args, "--json")...)
		var rep struct {
			Received, Attempts int
			InterArrival       struct{ Count int } `json:"inter_arrival_ms"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 0 {
			t.Fatalf("exit %d, stdout not one JSON object (%v):\n%s", res.code, err, res.stdout)
		}
		if rep.Received != 12 || rep.Attempts != 4 || rep.InterArrival.Count != 8 {
			t.Errorf("received %d, attempts %d, inter-arrival samples %d; want 12, 4, 8", rep.Received, rep.Attempts, rep.InterArrival.Count)
		}
	})
	t.Run("unmatched request", func(t *testing.T) {
		res := run(t, nil, "bench", "--url", m.URL+"/v1/stream", "--clients", "2", "--duration", "300ms", "--retry", "100ms", "--quiet")
		if res.code != 1 || !strings.Contains(res.stdout, "status 404×") || !strings.Contains(res.stderr, "no client could connect") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1, 404s counted, no client", res.code, res.stdout, res.stderr)
		}
	})
	t.Run("content type", func(t *testing.T) {
		res := run(t, nil, "bench", "--url", m.URL+"/plain", "--clients", "1", "--duration", "200ms", "--quiet", "--json")
		var rep struct {
			Errors struct {
				ContentType int `json:"content_type"`
			} `json:"errors"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 1 || rep.Errors.ContentType < 1 {
			t.Errorf("exit %d, stdout %q (%v); want 1 and content-type errors", res.code, res.stdout, err)
		}
	})
}

func TestBenchStreamUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"remote", []string{"--url", "http://192.0.2.1/events"}, 1, "pass --allow-remote"},
		{"not a URL", []string{"--url", "ftp://127.0.0.1/"}, 2, "is not an http:// or https:// URL"},
		{"mercure flag with url", []string{"--url", "http://127.0.0.1:1/", "--subscribers", "3"}, 2, "-subscribers is for the Mercure mode"},
		{"request flag without url", []string{"-H", "X: y"}, 2, "-H is for the generic mode"},
		{"too many clients", []string{"--url", "http://127.0.0.1:1/", "--clients", "10001"}, 2, "clients must be between"},
		{"too long", []string{"--url", "http://127.0.0.1:1/", "--duration", "2h"}, 2, "duration must be between"},
		{"zero rate", []string{"--url", "http://127.0.0.1:1/", "--connect-rate", "0"}, 2, "must be above 0"},
		{"bad method", []string{"--url", "http://127.0.0.1:1/", "-X", "BAD METHOD"}, 2, "invalid method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, nil, append([]string{"bench"}, tt.args...)...)
			if res.code != tt.code || !strings.Contains(res.stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, tt.code, tt.stderr)
			}
		})
	}
	res := run(t, nil, "bench", "--help")
	if !strings.Contains(res.stdout, "--url") || !strings.Contains(res.stdout, "Generic mode") {
		t.Errorf("bench --help lacks the generic mode:\n%s", res.stdout)
	}
}
