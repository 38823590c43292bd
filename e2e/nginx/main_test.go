// Package nginx_test runs real "ssekit serve" processes behind a real nginx,
// with the configurations docs/deploying.md shows ("Behind nginx", "Behind
// a load balancer"): events pass one by one as they are published,
// heartbeats keep idle streams open, Last-Event-ID, Authorization and the
// cookie reach the hub, and with several hubs on one Redis a node stopped
// with SIGTERM moves its subscribers to the others with nothing lost and
// nothing repeated.
//
// TestMain builds the binary once; each test starts its own hubs and its
// own nginx (foreground, every path in t.TempDir(), so it runs without
// root) on 127.0.0.1. Tests skip where nginx is not installed, and fail
// instead under SSEKIT_REQUIRE_ALL=1.
package nginx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/testenv"
)

// testSecret is the HS256 key the hubs verify tokens with.
const testSecret = "e2e-nginx-0123456789abcdef0123456789abcdef"

// waitTimeout bounds every wait for something that must happen; nothing
// is asserted about speed.
const waitTimeout = 30 * time.Second

// ssekit is the binary TestMain built: set once before any test runs,
// read-only after.
var ssekit e2etest.Binary

func TestMain(m *testing.M) { os.Exit(e2etest.Main(m, "e2e/nginx", &ssekit)) }

// startHub runs "ssekit serve --jwt-key … args…" on a free port and waits
// until it listens.
func startHub(t *testing.T, args ...string) *e2etest.Hub {
	t.Helper()
	return ssekit.Start(t, e2etest.HubSpec{Args: append([]string{"--jwt-key", testSecret,
		"--allow-anonymous", "--data-dir", t.TempDir()}, args...)})
}

// nginxConf is testdata/nginx.conf.tmpl: the main configuration around a
// site file.
var nginxConf = template.Must(template.ParseFiles("testdata/nginx.conf.tmpl"))

// nginxProc is one nginx master process (and its worker) in the
// foreground.
type nginxProc struct {
	*e2etest.Process
	addr string // HOST:PORT it listens on
	dir  string // its prefix: configuration, pid file, logs, temp files
}

// base is the URL of nginx's server; hubURL its Mercure endpoint.
func (n *nginxProc) base() string   { return "http://" + n.addr }
func (n *nginxProc) hubURL() string { return n.base() + "/.well-known/mercure" }

// readSite returns a site file from testdata.
func readSite(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startNginx runs nginx with the site configuration, its "listen 80;"
// replaced by a free port on 127.0.0.1, and waits until GET /healthz
// through it answers 200 (so the hubs behind it are up too).
func startNginx(t *testing.T, site string) *nginxProc {
	t.Helper()
	bin := testenv.NeedCommand(t, "nginx")
	for attempt := 0; ; attempt++ {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
			t.Fatal(err)
		}
		addr := e2etest.FreeAddr(t)
		var conf bytes.Buffer
		err := nginxConf.Execute(&conf, map[string]any{
			"Dir":  dir,
			"Root": os.Geteuid() == 0, // workers keep root's access to dir
			"Site": e2etest.ReplaceOnce(t, site, "listen 80;", "listen "+addr+";"),
		})
		if err != nil {
			t.Fatal(err)
		}
		confPath := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-e", "stderr", "-p", dir+"/", "-c", confPath,
			"-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+";")
		// A process group of its own, so that the final SIGKILL also ends
		// nginx's worker, which would otherwise outlive its master and keep
		// the output pipe (and Wait) open.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		n := &nginxProc{Process: e2etest.StartProcess(t, "nginx "+addr, cmd), addr: addr, dir: dir}
		err = n.waitHealthy(t)
		if err == nil {
			return n
		}
		if !n.Exited() || !strings.Contains(n.Out.String(), "Address already in use") || attempt >= 20 {
			t.Fatalf("nginx on %s: %v\n%s\nconfiguration:\n%s", addr, err, n.Out, conf.String())
		}
	}
}

// waitHealthy waits until GET /healthz through nginx answers 200.
func (n *nginxProc) waitHealthy(t *testing.T) error {
	c := e2etest.NewClient(t)
	deadline := time.Now().Add(waitTimeout)
	for {
		if n.Exited() {
			return fmt.Errorf("exited: %v", n.Err())
		}
		if code := e2etest.Status(c, n.base()+"/healthz"); code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET /healthz through nginx not 200 after %v", waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// token mints a token with testSecret.
func token(t *testing.T, c hub.Claims) string { return e2etest.Token(t, testSecret, c) }

// publisherToken may publish to every topic.
func publisherToken(t *testing.T) string { return e2etest.PublisherToken(t, testSecret) }

// publish posts one update and returns the status and body (status 0 and
// the error when the request failed).
func publish(c *http.Client, hubURL, tok string, form url.Values) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hubURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// mustPublish publishes data to topic with the given id ("": the hub's)
// and returns the update's id.
func mustPublish(t *testing.T, c *http.Client, hubURL, topic, id, data string, extra ...string) string {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}}
	if id != "" {
		form.Set("id", id)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	code, body := publish(c, hubURL, publisherToken(t), form)
	if code != http.StatusOK {
		t.Fatalf("publish to %s: %d %s", hubURL, code, body)
	}
	return body
}

// item is what a stream reader saw: an event, a comment, or the end.
type item struct {
	ev        sse.Event
	isComment bool
	comment   string // the comment's text, when isComment
	end       error  // set on the last item: the stream ended
}

// stream is one subscription read by a goroutine of its own, so that a
// test can wait for the next item with a deadline even when nothing (not
// even the response head) arrives.
type stream struct {
	items chan item
	resp  chan *http.Response // the response (head), once
}

// openStream subscribes with a GET of u and headers (name, value pairs),
// and reads it until it ends or the test does. A status other than 200
// arrives as the end item.
func openStream(t *testing.T, c *http.Client, u string, headers ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{items: make(chan item, 4096), resp: make(chan *http.Response, 1)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	// send hands an item to the test, unless the test is over.
	send := func(it item) bool {
		select {
		case s.items <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(done)
		defer close(s.items)
		resp, err := c.Do(req)
		if err != nil {
			send(item{end: err})
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			send(item{end: fmt.Errorf("status %s: %s", resp.Status, b)})
			return
		}
		s.resp <- resp
		dec := sse.NewDecoder(resp.Body)
		dec.OnComment = func(text string) { send(item{isComment: true, comment: text}) }
		for {
			ev, err := dec.Next()
			if err != nil {
				send(item{end: err})
				return
			}
			if !send(item{ev: ev}) {
				return
			}
		}
	}()
	return s
}

// errNothing is what nextItem returns when nothing arrived in time.
var errNothing = errors.New("nothing arrived")

// nextItem returns the next item, or errNothing after timeout.
func (s *stream) nextItem(timeout time.Duration) (item, error) {
	select {
	case it, ok := <-s.items:
		if !ok {
			return item{}, io.EOF
		}
		return it, nil
	case <-time.After(timeout):
		return item{}, errNothing
	}
}

// nextEvent skips comments and returns the next event; it fails the test
// when the stream ends or nothing arrives within waitTimeout.
func (s *stream) nextEvent(t *testing.T) sse.Event {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		it, err := s.nextItem(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for an event: %v", err)
		}
		if it.end != nil {
			t.Fatalf("waiting for an event: the stream ended: %v", it.end)
		}
		if !it.isComment {
			return it.ev
		}
	}
}

// waitResponse returns the response (its head: the body is the
// reader's), failing after waitTimeout.
func (s *stream) waitResponse(t *testing.T) *http.Response {
	t.Helper()
	select {
	case resp := <-s.resp:
		return resp
	case <-time.After(waitTimeout):
		t.Fatalf("no response head within %v", waitTimeout)
		return nil
	}
}

// subscribers returns the hub's ssekit_subscribers gauge, read from its
// /metrics directly (not through nginx); -1 when it cannot be read.
func subscribers(h *e2etest.Hub) int {
	return e2etest.Gauge(h.Client, h.Base(), "ssekit_subscribers")
}

// waitSubscribers waits until the hub counts want subscribers.
func waitSubscribers(t *testing.T, h *e2etest.Hub, want int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := subscribers(h)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub %s: %d subscribers after %v; want %d", h.Addr, got, waitTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
