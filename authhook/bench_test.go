package authhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ssekit/sse/authhook"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// BenchmarkSubscribeHook is the latency of a subscribe's authorisation
// over HTTP/1.1 (HEAD: the answer a GET gets, without the stream) with
// no hook (anonymous), the hook's cached decision, and a call to the
// application each time.
func BenchmarkSubscribeHook(b *testing.B) {
	for _, mode := range []string{"anonymous", "cached", "uncached"} {
		b.Run(mode, func(b *testing.B) {
			ttl := 0
			if mode == "cached" {
				ttl = 3600
			}
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				fmt.Fprintf(w, `{"allow": true, "cache_ttl": %d}`, ttl)
			}))
			defer app.Close()
			th := testhub.New(b, func(_ *hub.Config, s *server.Config) {
				if mode != "anonymous" {
					h, err := authhook.New(authhook.Config{URL: app.URL, MaxCacheTTL: 3600e9})
					if err != nil {
						b.Fatal(err)
					}
					s.SubscribeHook = h
				}
			})
			srv := ssetest.NewServer(b, ssetest.HTTP1, th.Server)
			defer th.Close()
			c := srv.Client()
			req, _ := http.NewRequest(http.MethodHead, srv.URL+"/.well-known/mercure?topic=a", nil)
			b.ResetTimer()
			for b.Loop() {
				resp, err := c.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("%v %v", resp, err)
				}
				resp.Body.Close()
			}
		})
	}
}
