package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealth(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ready\n"))
	}))
	defer ready.Close()
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "shutting down\x1b[2J", http.StatusServiceUnavailable)
	}))
	defer busy.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"ready", []string{ready.URL + "/readyz"}, exitOK, ""},
		{"not ready", []string{busy.URL + "/readyz"}, exitFailure, "not ready: HTTP 503"},
		{"not found", []string{ready.URL + "/nope"}, exitFailure, "not ready: HTTP 404"},
		{"nobody listening", []string{gone.URL + "/readyz"}, exitFailure, "connect"},
		{"not a URL", []string{"ftp://x/readyz"}, exitUsage, "want an http:// or https:// URL"},
		{"two URLs", []string{ready.URL, ready.URL}, exitUsage, "at most one URL"},
		{"bad timeout", []string{"--timeout", "0s", ready.URL}, exitUsage, "--timeout must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, nil, append([]string{"health"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tc.code, tc.stderr)
			}
			if strings.Contains(r.stderr, "\x1b") {
				t.Fatalf("stderr carries the server's escape sequence: %q", r.stderr)
			}
			if n := strings.Count(r.stderr, "\n"); n > 1 {
				t.Fatalf("stderr has %d lines; want one: %q", n, r.stderr)
			}
		})
	}
}
