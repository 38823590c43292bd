package server_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
	"github.com/ssekit/sse/store/bolt"
)

// BenchmarkPublishHTTP drives the publish handler directly (no network:
// httptest.NewRecorder) from 128 goroutines, as the "publishes with no
// subscribers" load test does, with a memory store and a bolt store in
// t.TempDir(). ns/op and allocs/op are per publish, the request's own
// construction included; the bolt figures include the group commit's
// fdatasync, shared by the appends waiting at that moment.
func BenchmarkPublishHTTP(b *testing.B) {
	for _, kind := range []string{"memory", "bolt"} {
		b.Run(kind, func(b *testing.B) {
			th := newTestHub(b, ssetest.HTTP1, func(h *hub.Config, _ *server.Config) {
				if kind == "bolt" {
					s, err := bolt.Open(filepath.Join(b.TempDir(), "hub.db"), bolt.Config{})
					if err != nil {
						b.Fatal(err)
					}
					h.Store = s
				}
			})
			srv, token := th.server, th.publisher()
			body := "topic=" + strings.Repeat("t", 20) + "&data=" + strings.Repeat("x", 100)
			target := "http://127.0.0.1/.well-known/mercure"
			runPublishes(b, srv, 128, target, body, "application/x-www-form-urlencoded", token)
		})
	}
}

// runPublishes posts body to target through srv's handler (a recorder, no
// network) from goroutines goroutines until b.N requests are done, failing
// b if any is not answered 200.
func runPublishes(b *testing.B, srv http.Handler, goroutines int, target, body, contentType, token string) {
	var failed atomic.Int64
	b.SetParallelism(max(1, goroutines/benchProcs()))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			req.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d publishes failed", n)
	}
}

// benchProcs is GOMAXPROCS: RunParallel starts that many goroutines
// times the parallelism.
func benchProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkPublishUnderAttack measures a publisher's latency over real
// HTTP/1.1 while one of the attacks of issue 8 this package answers runs
// beside it, against the same publish with nothing else going on: clients
// subscribing and leaving as fast as they can (each departure noticed by
// the watcher), a publisher posting bodies of 10,000 topics (413 before
// parsing), and 50 publishers trickling their bodies (408 after the body
// timeout). ns/op is one publish, received by a subscriber; max-µs the
// slowest.
func BenchmarkPublishUnderAttack(b *testing.B) {
	attacks := []struct {
		name string
		run  func(b *testing.B, th *testHub, stop <-chan struct{})
	}{
		{"Quiet", func(*testing.B, *testHub, <-chan struct{}) {}},
		{"DepartureChurn", func(b *testing.B, th *testHub, stop <-chan struct{}) {
			for {
				select {
				case <-stop:
					return
				default:
				}
				nc, err := net.Dial("tcp", strings.TrimPrefix(th.http.URL, "http://"))
				if err != nil {
					b.Error(err)
					return
				}
				fmt.Fprintf(nc, "GET /.well-known/mercure?topic=churn HTTP/1.1\r\nHost: x\r\n\r\n")
				if resp, err := http.ReadResponse(bufio.NewReader(nc), nil); err != nil || resp.StatusCode != http.StatusOK {
					b.Errorf("churn subscribe: %v", err)
				}
				nc.Close()
			}
		}},
		{"TopicFlood", func(b *testing.B, th *testHub, stop <-chan struct{}) {
			body := strings.Repeat("topic=flood&", 10000) + "data=x"
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", th.url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", "Bearer "+th.publisher())
				if status, _ := th.do(req); status != http.StatusRequestEntityTooLarge {
					b.Errorf("flood answered %d; want 413", status)
					return
				}
			}
		}},
		{"SlowBodies", func(b *testing.B, th *testHub, stop <-chan struct{}) {
			u, _ := url.Parse(th.url)
			for range 50 {
				go func() {
					nc, err := net.Dial("tcp", u.Host)
					if err != nil {
						return
					}
					defer nc.Close()
					fmt.Fprintf(nc, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ntopic=slow&data=", u.Path, u.Host, th.publisher())
					for {
						select {
						case <-stop:
							return
						case <-time.After(100 * time.Millisecond):
							if _, err := nc.Write([]byte("x")); err != nil {
								return
							}
						}
					}
				}()
			}
			<-stop
		}},
	}
	for _, a := range attacks {
		b.Run(a.name, func(b *testing.B) {
			th := newTestHub(b, ssetest.HTTP1, func(_ *hub.Config, s *server.Config) {
				s.Heartbeat = -1
				s.BodyTimeout = time.Second
			})
			sub := th.subscribe(topics("timed"), nil)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { defer close(done); a.run(b, th, stop) }()
			time.Sleep(100 * time.Millisecond) // the attack under way
			var slowest time.Duration
			for b.Loop() {
				start := time.Now()
				th.mustPublish("x", "timed")
				sub.next()
				slowest = max(slowest, time.Since(start))
			}
			b.ReportMetric(float64(slowest.Microseconds()), "max-µs")
			close(stop)
			<-done
		})
	}
}
