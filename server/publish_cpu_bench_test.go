//go:build unix

package server_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
	"github.com/ssekit/sse/store/bolt"
)

// BenchmarkPublishCPU measures the process's CPU time (user + system, from
// getrusage) per durable update on a bolt store in b.TempDir(): single
// form publishes and batches of 10 and 100 on the batch route, with no
// subscriber and with 10 receiving every update over HTTP/1.1. The
// handler is driven directly (httptest.NewRecorder) from 64 goroutines, so
// the figure is the hub's work plus building the requests (no network,
// no client); cpu-µs/update is the metric, ns/op is per request.
func BenchmarkPublishCPU(b *testing.B) {
	for _, subs := range []int{0, 10} {
		for _, size := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("subs=%d/batch=%d", subs, size), func(b *testing.B) {
				benchPublishCPU(b, subs, size)
			})
		}
	}
}

func benchPublishCPU(b *testing.B, subs, size int) {
	th := newTestHub(b, ssetest.HTTP1, func(h *hub.Config, s *server.Config) {
		st, err := bolt.Open(filepath.Join(b.TempDir(), "hub.db"), bolt.Config{})
		if err != nil {
			b.Fatal(err)
		}
		h.Store = st
		s.Heartbeat = -1
	})
	for range subs {
		sub := th.subscribe(topics("cpu"), nil)
		go func() { // read and drop: a client that keeps up
			for {
				select {
				case <-sub.events:
				case <-sub.done:
					return
				}
			}
		}()
	}
	srv, token := th.server, th.publisher()
	data := strings.Repeat("x", 100)
	target, body, contentType := "http://127.0.0.1"+hub.Path, "topic=cpu&data="+data, "application/x-www-form-urlencoded"
	if size > 1 {
		line := `{"topic":"cpu","data":"` + data + `"}` + "\n"
		target, body, contentType = "http://127.0.0.1"+hub.BatchPath, strings.Repeat(line, size), "application/x-ndjson"
	}
	start := cpuTime()
	runPublishes(b, srv, 64, target, body, contentType, token)
	cpu := cpuTime() - start
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*size), "cpu-µs/update")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
