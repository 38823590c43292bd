package hostile_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
)

// template is one expression of operator op with n variables, each with
// the suffix mod (":99", "*" or ""): the shape whose regexp used to grow
// with the square of n.
func template(op string, n int, mod string) string {
	var b strings.Builder
	b.WriteString("{" + op)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "v%d%s", i, mod)
	}
	b.WriteByte('}')
	return b.String()
}

// selectorAttack is one hostile subscription: its selectors, and the
// status and reason the hub must answer (200: accepted at once).
type selectorAttack struct {
	name      string
	selectors []string
	status    int
	reason    string
}

func repeatSelectors(n int, f func(i int) string) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = f(i)
	}
	return s
}

var selectorAttacks = []selectorAttack{
	{"many variables, over the limit", repeatSelectors(12, func(i int) string {
		return fmt.Sprintf("https://example.com/%d/", i) + template("+", 300, "")
	}), http.StatusBadRequest, "too many template variables"},
	{"many variables, at the limit", repeatSelectors(12, func(i int) string {
		return fmt.Sprintf("https://example.com/%d/", i) + template("+", hub.MaxTemplateVariables, "")
	}), http.StatusOK, ""},
	{"many templates at the limit", repeatSelectors(100, func(i int) string {
		return fmt.Sprintf("https://example.com/%d/", i) + template("?", hub.MaxTemplateVariables, ":99")
	}), http.StatusOK, ""},
	{"many long selectors, together over the limit", repeatSelectors(hub.MaxSubscriptionSelectorBytes/hub.MaxSelectorLength+4, func(i int) string {
		return fmt.Sprintf("https://example.com/%d/", i) + strings.Repeat("a", hub.MaxSelectorLength-40) + "{id}"
	}), http.StatusBadRequest, "selectors together are over"},
	{"many expressions", repeatSelectors(50, func(i int) string {
		return fmt.Sprintf("https://example.com/%d", i) + strings.Repeat("{/x}", hub.MaxTemplateVariables)
	}), http.StatusOK, ""},
	{"long literal, over the limit", []string{"https://example.com/" + strings.Repeat("a", hub.MaxSelectorLength) + "{id}"},
		http.StatusBadRequest, "selector too long"},
	{"long literal, at the limit", []string{"https://example.com/" + strings.Repeat("a", hub.MaxSelectorLength-30) + "{id}"},
		http.StatusOK, ""},
	{"nested operators", repeatSelectors(50, func(i int) string {
		return fmt.Sprintf("https://example.com/%d/", i) + strings.Repeat("{+{#{.{/{;{?{&", 40) + "x" + strings.Repeat("}", 280)
	}), http.StatusOK, ""},
	{"exploded and prefixed", repeatSelectors(50, func(i int) string {
		return fmt.Sprintf("https://example.com/%d/", i) + template("#", 32, "*") + template(".", 32, ":9999")
	}), http.StatusOK, ""},
}

// attackQuery is the query string subscribing to every selector of a.
func (a selectorAttack) query() string {
	q := url.Values{"topic": a.selectors}
	return q.Encode()
}

// try sends the hostile subscription and checks the hub's answer; an
// accepted one is closed once its stream is open.
func (a selectorAttack) try(t testing.TB, c *http.Client, hubURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2etest.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hubURL+"?"+a.query(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", a.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != a.status {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		t.Fatalf("%s: got %s %q; want %d", a.name, resp.Status, body, a.status)
	}
	if a.status != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		if !strings.Contains(string(body), a.reason) {
			t.Errorf("%s: answer %q; want the reason %q", a.name, body, a.reason)
		}
	} else if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("%s: Content-Type %q; want an event stream", a.name, ct)
	}
}

// TestHostileSelectors sends each attack shape, several times and from
// several clients at once, while a publisher publishes to a subscriber of
// an ordinary template: every attack gets its answer, every publish is
// acknowledged, and the subscriber gets every acknowledged update exactly
// once.
func TestHostileSelectors(t *testing.T) {
	h := startHub(t)
	const topic = "https://example.com/books/1"
	sub := e2etest.Subscribe(t, []*e2etest.Hub{h}, 0, "https://example.com/books/{id}", "")
	pub := e2etest.NewPublisher([]*e2etest.Hub{h}, e2etest.PublisherToken(t, testSecret))

	ctx, stop := context.WithCancel(t.Context())
	published := make(chan error, 1)
	go func() {
		// Bounded in count; stopped early once the attacks are over.
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			if err := pub.Publish(context.Background(), topic, fmt.Sprintf("u%d", i)); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()

	for _, a := range selectorAttacks {
		t.Run(a.name, func(t *testing.T) {
			c := e2etest.NewClient(t)
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					for range 5 {
						a.try(t, c, h.URL())
					}
				})
			}
			wg.Wait()
		})
	}
	stop()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	// The hub still serves ordinary subscribers after the attacks.
	after := e2etest.OpenStream(t, h.Client, h.URL(), "topic="+url.QueryEscape(topic), "", e2etest.Timeout)
	pub.MustPublish(t, topic, "last")
	if ev := after.Next(t); ev.ID != "last" {
		t.Errorf("subscriber opened after the attacks got %q; want %q", ev.ID, "last")
	}
	want := pub.Acked(topic)
	if len(want) < 2 {
		t.Fatalf("only %d publishes acknowledged during the attacks", len(want))
	}
	e2etest.CheckExactly(t, "subscriber during the attacks", sub.WaitIDs(t, want), want)
	if f := pub.Failures(); len(f) > 0 {
		t.Errorf("%d publishes were refused during the attacks, first %v", len(f), f[0])
	}
}

// BenchmarkPublishDuringSelectorAttack measures the latency of one
// acknowledged publish to a real hub, "idle" and while two clients keep
// sending the costliest accepted subscription (100 fresh templates of
// hub.MaxTemplateVariables variables each, closed once open); it reports
// the attacks served per second and the hub's RSS from /proc at the end.
func BenchmarkPublishDuringSelectorAttack(b *testing.B) {
	addr := e2etest.FreeAddr(b)
	cmd := ssekit.Command(nil, "serve", "--addr", addr, "--data-dir", b.TempDir(), "--jwt-key", testSecret, "--allow-anonymous")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	hubURL := "http://" + addr + "/.well-known/mercure"
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for deadline := time.Now().Add(e2etest.Timeout); e2etest.Status(c, "http://"+addr+"/healthz") != http.StatusOK; {
		if time.Now().After(deadline) {
			b.Fatalf("hub on %s not up in %v", addr, e2etest.Timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok, err := ssekit.Command(nil, "token", "--key", testSecret, "--publish", "*").Output()
	if err != nil {
		b.Fatal(err)
	}
	bearer := "Bearer " + strings.TrimSpace(string(tok))
	publish := func(id string) {
		form := url.Values{"topic": {"https://example.com/books/1"}, "id": {id}, "data": {"x"}}
		req, _ := http.NewRequest(http.MethodPost, hubURL, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", bearer)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("publish %s: %s", id, resp.Status)
		}
	}
	n := 0
	for _, attack := range []bool{false, true} {
		name := "idle"
		if attack {
			name = "attack"
		}
		b.Run(name, func(b *testing.B) {
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var attacks atomic.Int64
			if attack {
				for w := range 2 {
					wg.Go(func() {
						for i := 0; ctx.Err() == nil && i < 100_000; i++ {
							a := selectorAttack{selectors: repeatSelectors(100, func(j int) string {
								return fmt.Sprintf("https://example.com/%d/%d/%d/", w, i, j) + template("+", hub.MaxTemplateVariables, "")
							})}
							req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hubURL+"?"+a.query(), nil)
							resp, err := c.Do(req)
							if err != nil {
								continue // cancelled at the end
							}
							resp.Body.Close()
							attacks.Add(1)
						}
					})
				}
			}
			for b.Loop() {
				n++
				publish(fmt.Sprintf("%s-%d", name, n))
			}
			stop()
			wg.Wait()
			b.ReportMetric(float64(attacks.Load())/b.Elapsed().Seconds(), "attacks/s")
			b.ReportMetric(float64(rssKiB(b, cmd.Process.Pid))/1024, "RSS-MiB")
		})
	}
}

// rssKiB reads the resident set size of process pid from /proc.
func rssKiB(b *testing.B, pid int) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kib
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
