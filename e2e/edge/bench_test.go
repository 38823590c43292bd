package edge_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/internal/e2etest"
)

// The same generator for the three protocols over TLS: one hub process
// per run, subscribers opened by this process, the hub's resident set and
// CPU time read from /proc. Run with -benchtime=1x:
//
//	go test ./e2e/edge -run '^$' -bench . -benchtime=1x
const (
	benchIdleStreams = 2000
	benchPerConn     = 100 // streams per connection (h2, h3); h1 has one each
	benchSubscribers = 100
	benchEvents      = 1000
)

type benchClients struct {
	proto string
	pool  func() *http.Client
}

func benchProtos(b *testing.B, tc e2etest.TestCert) []benchClients {
	mk := func(proto string) func() *http.Client {
		return func() *http.Client {
			tlsConf := &tls.Config{RootCAs: tc.Pool}
			switch proto {
			case "h3":
				tr := &http3.Transport{TLSClientConfig: tlsConf, QUICConfig: &quic.Config{MaxIdleTimeout: time.Minute, KeepAlivePeriod: 20 * time.Second}}
				b.Cleanup(func() { tr.Close() })
				return &http.Client{Transport: tr}
			default:
				tr := &http.Transport{TLSClientConfig: tlsConf, Protocols: new(http.Protocols), MaxConnsPerHost: 0}
				if proto == "h2" {
					tr.Protocols.SetHTTP2(true)
				} else {
					tr.Protocols.SetHTTP1(true)
				}
				b.Cleanup(tr.CloseIdleConnections)
				return &http.Client{Transport: tr}
			}
		}
	}
	return []benchClients{{"h1", mk("h1")}, {"h2", mk("h2")}, {"h3", mk("h3")}}
}

func procRSS(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// procCPU is the process's user+system time (clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func benchHub(b *testing.B, tc e2etest.TestCert) *e2etest.Hub {
	return ssekit.Start(b, e2etest.HubSpec{Args: append([]string{"--jwt-key", testSecret, "--allow-anonymous",
		"--store", "memory", "--data-dir", b.TempDir(), "--max-subscribers", "-1"}, tc.Args()...)})
}

// openStreams opens n subscriptions to topic(i), benchPerConn per client,
// and returns their bodies once every response head arrived.
func openStreams(b *testing.B, ctx context.Context, p benchClients, hubURL string, n int, topic func(i int) string) []*http.Response {
	resps := make([]*http.Response, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var c *http.Client
	for i := range n {
		if i%benchPerConn == 0 {
			c = p.pool()
		}
		wg.Add(1)
		go func(c *http.Client) {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hubURL+"?topic="+url.QueryEscape(topic(i)), nil)
			resp, err := c.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
				return
			}
			resps[i] = resp
		}(c)
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%s: %d of %d subscriptions failed", p.proto, f, n)
	}
	return resps
}

// BenchmarkIdleSubscriberTLS: the hub's resident memory per idle
// subscriber, over HTTP/1.1, HTTP/2 and HTTP/3, all over TLS.
func BenchmarkIdleSubscriberTLS(b *testing.B) {
	tc := e2etest.NewTestCert(b)
	for _, p := range benchProtos(b, tc) {
		b.Run(p.proto, func(b *testing.B) {
			for range b.N {
				h := benchHub(b, tc)
				pid := h.Cmd.Process.Pid
				time.Sleep(500 * time.Millisecond)
				before := procRSS(b, pid)
				ctx, cancel := context.WithCancel(context.Background())
				openStreams(b, ctx, p, h.URL(), benchIdleStreams, func(i int) string { return "idle-" + strconv.Itoa(i) })
				time.Sleep(2 * time.Second)
				after := procRSS(b, pid)
				b.ReportMetric(float64(after-before)/benchIdleStreams, "B/subscriber")
				cancel()
				h.Kill()
			}
		})
	}
}

// BenchmarkDeliveredEventTLS: the hub's CPU time per delivered event (its
// publish handling included), benchSubscribers subscribers on one topic,
// benchEvents published one after another.
func BenchmarkDeliveredEventTLS(b *testing.B) {
	tc := e2etest.NewTestCert(b)
	for _, p := range benchProtos(b, tc) {
		b.Run(p.proto, func(b *testing.B) {
			for range b.N {
				h := benchHub(b, tc)
				pid := h.Cmd.Process.Pid
				ctx, cancel := context.WithCancel(context.Background())
				resps := openStreams(b, ctx, p, h.URL(), benchSubscribers, func(int) string { return "hot" })
				var got sync.WaitGroup
				for _, r := range resps {
					got.Add(1)
					go func() {
						defer got.Done()
						dec := sse.NewDecoder(r.Body)
						for n := 0; n < benchEvents; n++ {
							if _, err := dec.Next(); err != nil {
								return
							}
						}
					}()
				}
				pub := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.Pool}}
				pc := &http.Client{Transport: pub}
				tok := e2etest.PublisherToken(b, testSecret)
				cpu0 := procCPU(b, pid)
				for i := range benchEvents {
					if _, err := e2etest.Publish(ctx, pc, h.URL(), tok, url.Values{"topic": {"hot"}, "data": {fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("p", 100))}}); err != nil {
						b.Fatal(err)
					}
				}
				got.Wait()
				cpu := procCPU(b, pid) - cpu0
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(benchSubscribers*benchEvents), "hub-ns/delivered")
				cancel()
				pub.CloseIdleConnections()
				h.Kill()
			}
		})
	}
}
