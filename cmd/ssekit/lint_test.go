package main

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

	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// lintStream is a stream that does everything right unless a field plants
// a mistake: one handler per mistake in TestLintFindsMistakes.
type lintStream struct {
	contentType  string // "" means text/event-stream; "-" means none
	noCache      bool   // leave out Cache-Control
	noAccel      bool   // leave out X-Accel-Buffering
	contentLen   bool   // set Content-Length
	status       int    // 0 means 200
	slowHeaders  time.Duration
	noIDs        bool
	silence      time.Duration // sleep this long before the last event
	retry        string        // a retry line's value
	lineEnd      func(i int) string
	buffered     bool // hold events back and send them 8 at a time, as a buffering proxy does
	bigEvent     int  // a data field of this many bytes
	badUTF8      bool
	events       int
	interval     time.Duration
	keepOpenTill time.Duration
}

func (s lintStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(s.slowHeaders)
	h := w.Header()
	switch s.contentType {
	case "":
		h.Set("Content-Type", "text/event-stream")
	case "-":
		h["Content-Type"] = nil // no sniffing either
	default:
		h.Set("Content-Type", s.contentType)
	}
	if !s.noCache {
		h.Set("Cache-Control", "no-cache")
	}
	if !s.noAccel {
		h.Set("X-Accel-Buffering", "no")
	}
	events := s.events
	if events == 0 {
		events = 6
	}
	interval := s.interval
	if interval == 0 {
		interval = 20 * time.Millisecond
	}
	var body strings.Builder
	if s.contentLen {
		body.WriteString("id: 1\ndata: x\n\n")
		h.Set("Content-Length", fmt.Sprint(body.Len()))
	}
	if s.status != 0 {
		w.WriteHeader(s.status)
		io.WriteString(w, `{"error":"planted"}`)
		return
	}
	w.WriteHeader(http.StatusOK)
	if s.contentLen {
		io.WriteString(w, body.String())
		return
	}
	rc := http.NewResponseController(w)
	rc.Flush()
	var held strings.Builder
	nl := func(i int) string {
		if s.lineEnd != nil {
			return s.lineEnd(i)
		}
		return "\n"
	}
	for i := 1; i <= events; i++ {
		var b strings.Builder
		if !s.noIDs {
			fmt.Fprintf(&b, "id: %d%s", i, nl(i))
		}
		if i == 1 && s.retry != "" {
			fmt.Fprintf(&b, "retry: %s%s", s.retry, nl(i))
		}
		data := fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("p", 100))
		if s.bigEvent > 0 && i == 2 {
			data = strings.Repeat("x", s.bigEvent)
		}
		if s.badUTF8 && i == 3 {
			data = "caf\xe9"
		}
		fmt.Fprintf(&b, "data: %s%s%s", data, nl(i), nl(i))
		if i == events && s.silence > 0 {
			time.Sleep(s.silence)
		}
		held.WriteString(b.String())
		if !s.buffered || i%8 == 0 || i == events {
			if _, err := io.WriteString(w, held.String()); err != nil {
				return
			}
			rc.Flush()
			held.Reset()
		}
		time.Sleep(interval)
	}
	select {
	case <-time.After(s.keepOpenTill):
	case <-r.Context().Done():
	}
}

// lint runs "ssekit lint --json" and returns the report and exit code.
func lintJSON(t *testing.T, m *Main, url string, args ...string) (*debugger.LintReport, result) {
	t.Helper()
	got := run(t, m, append(append([]string{"lint", "--json"}, args...), url)...)
	var rep debugger.LintReport
	if err := json.Unmarshal([]byte(got.stdout), &rep); err != nil {
		t.Fatalf("lint --json: %v\nstdout %q\nstderr %q", err, got.stdout, got.stderr)
	}
	return &rep, got
}

func TestLintFindsMistakes(t *testing.T) {
	fast := []string{"--duration", "1500ms"}
	tests := []struct {
		name   string
		stream lintStream
		args   []string
		rule   string
		failed bool // exit code 1
	}{
		{"wrong Content-Type", lintStream{contentType: "text/plain"}, fast, "content-type", true},
		{"no Content-Type", lintStream{contentType: "-"}, fast, "content-type", true},
		{"charset not UTF-8", lintStream{contentType: "text/event-stream; charset=iso-8859-1"}, fast, "content-type", true},
		{"status 500", lintStream{status: 500}, fast, "status", true},
		{"Content-Length", lintStream{contentLen: true}, fast, "content-length", false},
		{"no Cache-Control", lintStream{noCache: true}, fast, "cache-control", false},
		{"no X-Accel-Buffering", lintStream{noAccel: true}, fast, "proxy-buffering", false},
		{"headers held back", lintStream{slowHeaders: 1200 * time.Millisecond}, []string{"--duration", "3s", "--max-events", "3"}, "slow-headers", false},
		{"events without ids", lintStream{noIDs: true}, fast, "no-ids", false},
		{"no heartbeat", lintStream{silence: 800 * time.Millisecond}, []string{"--duration", "2s", "--heartbeat", "400ms"}, "heartbeat", false},
		{"invalid retry", lintStream{retry: "3s"}, fast, "retry-invalid", true},
		{"tiny retry", lintStream{retry: "10"}, fast, "retry-small", false},
		{"mixed line endings", lintStream{lineEnd: func(i int) string { return [...]string{"\n", "\r\n", "\r"}[i%3] }}, fast, "line-endings", false},
		{"invalid UTF-8", lintStream{badUTF8: true}, fast, "utf8", true},
		{"oversized event", lintStream{bigEvent: 100 << 10}, fast, "event-size", false},
		{"buffered bursts", lintStream{buffered: true, events: 30, interval: 80 * time.Millisecond}, []string{"--duration", "4s"}, "buffering", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.stream)
			t.Cleanup(srv.Close)
			rep, got := lintJSON(t, nil, srv.URL, tt.args...)
			if !rep.Has(tt.rule) {
				t.Errorf("findings %+v; want rule %s", rep.Findings, tt.rule)
			}
			for _, f := range rep.Findings {
				if f.Reason == "" || f.Fix == "" || f.Severity == "" {
					t.Errorf("finding %+v lacks a severity, reason or fix", f)
				}
			}
			if wantCode := map[bool]int{true: 1, false: 0}[tt.failed]; got.code != wantCode {
				t.Errorf("exit code %d; want %d (stderr %q)", got.code, wantCode, got.stderr)
			}
		})
	}
}

// TestLintCleanStream keeps the base of the planted mistakes honest: done
// right, it has nothing to report but notes.
func TestLintCleanStream(t *testing.T) {
	srv := httptest.NewServer(lintStream{})
	t.Cleanup(srv.Close)
	rep, got := lintJSON(t, nil, srv.URL, "--duration", "1s")
	assertClean(t, rep, got)
}

func assertClean(t *testing.T, rep *debugger.LintReport, got result) {
	t.Helper()
	for _, f := range rep.Findings {
		if f.Severity != debugger.SeverityInfo {
			t.Errorf("finding %+v; want none but notes", f)
		}
	}
	if got.code != 0 {
		t.Errorf("exit code %d; want 0 (stderr %q)", got.code, got.stderr)
	}
}

func TestLintDemo(t *testing.T) {
	servers(t, newDemoHandler(demoConfig{Interval: 50 * time.Millisecond}), func(t *testing.T, srv *httptest.Server, m *Main) {
		rep, got := lintJSON(t, m, srv.URL+"/events", "--duration", "3s")
		assertClean(t, rep, got)
		if rep.Events != len(demoSentences) {
			t.Errorf("%d events; want %d", rep.Events, len(demoSentences))
		}
	})
}

// TestLintHub lints a subscription to the hub while updates are published.
func TestLintHub(t *testing.T) {
	key, err := jwtauth.NewKey("HS256", []byte("0123456789abcdef0123456789abcdef-lint"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := jwtauth.New(jwtauth.Config{PublisherKey: key})
	if err != nil {
		t.Fatal(err)
	}
	store := hub.NewMemoryStore(hub.MemoryStoreConfig{})
	h, err := hub.New(hub.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Hub: h, Auth: auth, AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, proto := range ssetest.Protocols {
		t.Run(proto, func(t *testing.T) {
			hs := ssetest.NewServer(t, proto, srv)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				for i := 0; ctx.Err() == nil; i++ {
					h.Publish(ctx, &hub.Update{Topics: []string{"/books/1"}, Data: fmt.Sprintf(`{"n":%d}`, i)})
					select {
					case <-time.After(100 * time.Millisecond):
					case <-ctx.Done():
					}
				}
			}()
			m, _, _ := testMain()
			m.HTTPClient = hs.Client()
			rep, got := lintJSON(t, m, hs.URL+"/.well-known/mercure?topic=/books/1", "--duration", "2s")
			assertClean(t, rep, got)
			if rep.Events < 5 {
				t.Errorf("%d events; want the updates published meanwhile", rep.Events)
			}
		})
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		store.Close(context.Background())
	})
}

func TestLintHuman(t *testing.T) {
	srv := httptest.NewServer(lintStream{noIDs: true, retry: "soon"})
	t.Cleanup(srv.Close)
	got := run(t, nil, "lint", "--duration", "1s", srv.URL)
	for _, want := range []string{"error   retry-invalid", "warning no-ids", "fix: give every event an id", "1 error, 1 warning"} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, got.stdout)
		}
	}
	if got.code != 1 || got.stderr != "ssekit lint: 1 error, 1 warning\n" {
		t.Errorf("exit code %d, stderr %q; want 1 and the count", got.code, got.stderr)
	}
	// --fail-on warning fails on warnings alone.
	clean := httptest.NewServer(lintStream{noIDs: true})
	t.Cleanup(clean.Close)
	if got := run(t, nil, "lint", "--duration", "1s", "--fail-on", "warning", clean.URL); got.code != 1 {
		t.Errorf("--fail-on warning: exit code %d; want 1", got.code)
	}
	if got := run(t, nil, "lint", "--duration", "1s", "http://127.0.0.1:1/"); got.code != 1 || !strings.Contains(got.stderr, "cannot connect") {
		t.Errorf("no server: exit code %d, stderr %q; want 1 and cannot connect", got.code, got.stderr)
	}
}
