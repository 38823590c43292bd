package hostile_test

// Publish limits: a publisher (a token holder, trusted with the history,
// not with the hub's availability) naming thousands of topics in one
// update, sending a body of countless fields, or sending its body a byte
// at a time. Each is refused with its reason before it costs the fan-out
// or holds a request, and others' publishes go through meanwhile.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/internal/e2etest"
)

// postForm posts body as a publish form with tok and returns the status
// and the one-line answer.
func postForm(t *testing.T, h *e2etest.Hub, tok, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.URL(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := h.Client.Do(req)
	if err != nil {
		t.Fatalf("publishing: %v", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(answer))
}

// TestPublishManyTopicsRefused: an update naming more topics than
// --max-update-topics is a 413 that says so, whether the topics are
// distinct, one topic repeated, or hidden among other fields; nothing of
// it reaches a subscriber, and the watcher gets every accepted update.
func TestPublishManyTopicsRefused(t *testing.T) {
	h := startHub(t, "--max-update-topics", "50")
	publish, check := watchAcked(t, h, "watched")
	star := e2etest.OpenStream(t, h.Client, h.URL(), "topic=*", "", 30*time.Second)
	tok := e2etest.PublisherToken(t, testSecret)
	topics := func(n int, name func(i int) string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "topic=%s&", name(i))
		}
		return b.String() + "data=refused"
	}
	shapes := []struct {
		name, body, reason string
	}{
		{"Distinct", topics(51, func(i int) string { return fmt.Sprintf("https://example.com/t/%d", i) }), "too many topics in one update (51; max 50)"},
		{"Repeated", topics(10000, func(int) string { return "watched" }), "too many form fields"},
		{"AmongOtherFields", strings.Repeat("pad=1&", 10) + topics(51, func(int) string { return "x" }), "too many topics in one update (51; max 50)"},
		{"EmptyFields", "topic=watched&data=refused" + strings.Repeat("&", 100000), "too many form fields"},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			status, answer := postForm(t, h, tok, s.body)
			if status != http.StatusRequestEntityTooLarge || !strings.Contains(answer, s.reason) {
				t.Errorf("got %d %q; want 413 saying %q", status, answer, s.reason)
			}
			publish()
		})
	}
	// At the limit it is accepted.
	atLimit := strings.Replace(topics(50, func(i int) string { return fmt.Sprintf("https://example.com/t/%d", i) }), "data=refused", "data=accepted", 1)
	if status, answer := postForm(t, h, tok, atLimit); status != http.StatusOK {
		t.Errorf("50 topics: %d %q; want 200", status, answer)
	}
	check()
	// The star subscriber saw the accepted updates only, up to the one at
	// the limit.
	for {
		ev := star.Next(t)
		if ev.Data == "accepted" {
			break
		}
		if ev.Data == "refused" {
			t.Fatal("the star subscriber received a refused update")
		}
	}
}

// startSlowBody opens a connection to h and sends a publish request's
// head, announcing a body of 100,000 bytes, and the body's first bytes.
func startSlowBody(h *e2etest.Hub, tok string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", h.Addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(c, "POST /.well-known/mercure HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ntopic=slow&data=", h.Addr, tok)
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// trickleBody sends a byte of body every 100 ms until stop or an error.
func trickleBody(c net.Conn, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}
}

// TestSlowPublishBodyTimesOut: a publisher that sends its body a byte at
// a time, or stops half way, gets 408 once --body-timeout has passed
// instead of holding its request; others publish meanwhile.
func TestSlowPublishBodyTimesOut(t *testing.T) {
	h := startHub(t, "--body-timeout", "1s")
	publish, check := watchAcked(t, h, "watched")
	tok := e2etest.PublisherToken(t, testSecret)
	shapes := []struct {
		name string
		send func(c net.Conn, stop <-chan struct{})
	}{
		{"ByteAtATime", trickleBody},
		{"StopsHalfWay", func(c net.Conn, stop <-chan struct{}) { <-stop }},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			c, err := startSlowBody(h, tok)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			stop := make(chan struct{})
			defer close(stop)
			go s.send(c, stop)
			publish() // served while the slow body trickles
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to the slow body within 10 s: %v", err)
			}
			answer, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(answer), "not received within 1s") {
				t.Errorf("got %d %q; want 408 saying the body did not arrive in time", resp.StatusCode, answer)
			}
			publish()
		})
	}
	check()
}

// BenchmarkPublishDuringAttacks times an acknowledged publish, received by
// a subscriber, against a real hub while one attack of this suite's
// classes runs beside it flat out (subscribe-and-leave churn from another
// address, 10,000-topic bodies, 50 trickled bodies), and reports the
// slowest publish and the hub's RSS growth over the run (from /proc).
func BenchmarkPublishDuringAttacks(b *testing.B) {
	attacks := []struct {
		name string
		run  func(h *e2etest.Hub, tok string, stop <-chan struct{})
	}{
		{"Quiet", func(*e2etest.Hub, string, <-chan struct{}) {}},
		{"DepartureChurn", func(h *e2etest.Hub, _ string, stop <-chan struct{}) {
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(attackerAddr)}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := d.Dial("tcp", h.Addr)
				if err != nil {
					return
				}
				fmt.Fprintf(c, "GET /.well-known/mercure?topic=churn HTTP/1.1\r\nHost: %s\r\n\r\n", h.Addr)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				http.ReadResponse(bufio.NewReader(c), nil)
				c.Close()
			}
		}},
		{"TopicFlood", func(h *e2etest.Hub, tok string, stop <-chan struct{}) {
			body := strings.Repeat("topic=flood&", 10000) + "data=x"
			c := &http.Client{Transport: &http.Transport{}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, h.URL(), strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", "Bearer "+tok)
				if resp, err := c.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}},
		{"SlowBodies", func(h *e2etest.Hub, tok string, stop <-chan struct{}) {
			for range 50 {
				go func() {
					c, err := startSlowBody(h, tok)
					if err != nil {
						return
					}
					defer c.Close()
					trickleBody(c, stop)
				}()
			}
			<-stop
		}},
	}
	for _, a := range attacks {
		b.Run(a.name, func(b *testing.B) {
			h := ssekit.Start(b, e2etest.HubSpec{Args: []string{"--data-dir", b.TempDir(), "--jwt-key", testSecret,
				"--allow-anonymous", "--store", "memory", "--heartbeat", "-1s", "--body-timeout", "1s"}})
			tok := e2etest.PublisherToken(b, testSecret)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL()+"?topic=timed", nil)
			resp, err := h.Client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			dec := sse.NewDecoder(resp.Body)
			pid := h.Cmd.Process.Pid
			before := rssBytes(b, pid)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { defer close(done); a.run(h, tok, stop) }()
			time.Sleep(200 * time.Millisecond) // the attack under way
			var slowest time.Duration
			for b.Loop() {
				start := time.Now()
				pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := e2etest.Publish(pctx, h.Client, h.URL(), tok, url.Values{"topic": {"timed"}, "data": {"x"}})
				pcancel()
				if err != nil {
					b.Fatalf("publishing during the attack: %v", err)
				}
				if _, err := dec.Next(); err != nil {
					b.Fatalf("receiving: %v", err)
				}
				slowest = max(slowest, time.Since(start))
			}
			growth := rssBytes(b, pid) - before
			close(stop)
			<-done
			b.ReportMetric(float64(slowest.Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(growth)/(1<<20), "MiB-RSS-growth")
		})
	}
}
