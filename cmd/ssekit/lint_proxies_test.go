package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// behind answers as a proxy in front of s would: with its headers.
func behind(s http.Handler, headers ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		s.ServeHTTP(w, r)
	})
}

// TestLintNamesTheProxy: a stream that is buffered, or cut after a
// silence, behind a proxy its headers name, gets a finding that names
// the recipe of docs/deploying.md for it.
func TestLintNamesTheProxy(t *testing.T) {
	buffered := lintStream{buffered: true, events: 30, interval: 80 * time.Millisecond}
	cut := lintStream{events: 1, keepOpenTill: 700 * time.Millisecond}
	for _, tt := range []struct {
		name    string
		h       http.Handler
		args    []string
		rule    string
		proxy   string
		inFix   string
		inCause string
	}{
		{"Cloudflare buffers", behind(buffered, "Server", "cloudflare", "CF-Ray", "8c0ffee-AMS"), []string{"--duration", "4s"}, "proxy-buffers", "Cloudflare", `"Behind Cloudflare"`, "through Cloudflare"},
		{"Caddy cuts idle", behind(cut, "Server", "Caddy"), []string{"--duration", "3s", "--heartbeat", "400ms"}, "proxy-idle-cut", "Caddy", `"Behind Caddy"`, "of silence"},
		{"ALB cuts idle", behind(cut, "Server", "awselb/2.0"), []string{"--duration", "3s", "--heartbeat", "400ms"}, "proxy-idle-cut", "AWS ALB", `"Behind AWS ALB"`, "after 1m0s by default"},
		{"unknown proxy cuts idle", cut, []string{"--duration", "3s", "--heartbeat", "400ms"}, "proxy-idle-cut", "", `"Behind HAProxy"`, "idle timeout"},
		{"nginx, nothing wrong", behind(lintStream{}, "Server", "nginx/1.22.1"), []string{"--duration", "1s"}, "proxy", "nginx", `"Behind nginx"`, "through nginx"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.h)
			t.Cleanup(srv.Close)
			rep, _ := lintJSON(t, nil, srv.URL, tt.args...)
			if rep.Proxy != tt.proxy {
				t.Errorf("proxy %q; want %q", rep.Proxy, tt.proxy)
			}
			found := false
			for _, f := range rep.Findings {
				if f.Rule == tt.rule {
					found = true
					if !strings.Contains(f.Fix, tt.inFix) || !strings.Contains(f.Reason, tt.inCause) {
						t.Errorf("finding %+v; want the fix to name %s and the reason to say %q", f, tt.inFix, tt.inCause)
					}
				}
			}
			if !found {
				t.Errorf("findings %+v; want rule %s", rep.Findings, tt.rule)
			}
		})
	}
}
