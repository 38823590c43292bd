package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/poll"
)

// TestDebugCommand runs "ssekit debug" on a free port: it prints the page's
// address with its token, serves the page, refuses API calls without the
// token, and stops on its context.
func TestDebugCommand(t *testing.T) {
	m, _, stderr := testMain()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() { done <- m.Exit(m.Run(ctx, []string{"debug", "--addr", "127.0.0.1:0"})) }()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if !stopped {
			<-done
		}
	})
	addr := regexp.MustCompile(`open (http://127\.0\.0\.1:\d+)/\?token=([0-9a-f]{32}) `)
	var base, token string
	poll.Until(t, "the printed address", 30*time.Second, func() bool {
		if sub := addr.FindStringSubmatch(stderr.String()); sub != nil {
			base, token = sub[1], sub[2]
			return true
		}
		return false
	})
	resp, err := http.Get(base + "/?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "ssekit debug") {
		t.Errorf("GET /: %s; want the page", resp.Status)
	}
	body := `{"method":"GET","url":"http://127.0.0.1:1/"}`
	for _, tt := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong", 401}, {token, 200}} {
		req, _ := http.NewRequest("POST", base+"/api/sessions", strings.NewReader(body))
		req.Header.Set("X-Ssekit-Token", tt.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("token %q: %s; want %d", tt.token, resp.Status, tt.want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code %d; want 0 after the context ends", code)
	}
	stopped = true
}
