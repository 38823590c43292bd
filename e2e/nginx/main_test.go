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
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/testenv"
	"github.com/ssekit/sse/jwtauth"
)

// testSecret is the HS256 key the hubs verify tokens with.
const testSecret = "e2e-nginx-0123456789abcdef0123456789abcdef"

// waitTimeout bounds every wait for something that must happen; nothing
// is asserted about speed.
const waitTimeout = 30 * time.Second

// ssekitBin is the binary TestMain built: set once before any test runs,
// read-only after.
var ssekitBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ssekit-e2e-nginx-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/nginx:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ssekitBin = filepath.Join(dir, "ssekit")
	build := exec.Command("go", "build", "-o", ssekitBin, "github.com/ssekit/sse/cmd/ssekit")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/nginx: building ssekit:", err)
		return 1
	}
	return m.Run()
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a process the test started; it is killed when the test ends if
// it still runs, and its output logged if the test failed.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *syncBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

func startProc(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// A process group of its own, so that the final SIGKILL also ends
	// nginx's worker, which would otherwise outlive its master and keep
	// the output pipe (and Wait) open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out)
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig unless the process has ended.
func (p *proc) signal(sig syscall.Signal) {
	if !p.exited() {
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit and returns what Wait said.
func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not exit within %v", p.name, waitTimeout)
		return nil
	}
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago; the starters retry with another when a process took it meanwhile.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cleanEnv is the environment without SSEKIT_* settings (other than
// SSEKIT_REQUIRE_ALL).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SSEKIT_") && !strings.HasPrefix(kv, "SSEKIT_REQUIRE_ALL=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// hubNode is one "ssekit serve" process.
type hubNode struct {
	*proc
	addr string
}

// startHub runs "ssekit serve --addr <free port> --jwt-key … args…" and
// waits until it logs that it listens.
func startHub(t *testing.T, args ...string) *hubNode {
	t.Helper()
	for attempt := 0; ; attempt++ {
		addr := freeAddr(t)
		full := append([]string{"serve", "--addr", addr, "--jwt-key", testSecret,
			"--allow-anonymous", "--data-dir", t.TempDir()}, args...)
		cmd := exec.Command(ssekitBin, full...)
		cmd.Env = cleanEnv()
		h := &hubNode{proc: startProc(t, "hub "+addr, cmd), addr: addr}
		deadline := time.After(waitTimeout)
		for !strings.Contains(h.out.String(), "hub listening") && !h.exited() {
			select {
			case <-h.done:
			case <-deadline:
				t.Fatalf("hub %s not listening after %v:\n%s", addr, waitTimeout, h.out)
			case <-time.After(10 * time.Millisecond):
			}
		}
		if !h.exited() {
			return h
		}
		if !strings.Contains(h.out.String(), "address already in use") || attempt >= 20 {
			t.Fatalf("hub %s exited at start: %v\n%s", addr, h.waitErr, h.out)
		}
	}
}

// nginxConf is testdata/nginx.conf.tmpl: the main configuration around a
// site file.
var nginxConf = template.Must(template.ParseFiles("testdata/nginx.conf.tmpl"))

// nginxProc is one nginx master process (and its worker) in the
// foreground.
type nginxProc struct {
	*proc
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

// replaceOnce replaces old, which must occur in s exactly once, by new: a
// site file that no longer has the line a test rewrites fails loudly
// instead of being tested unchanged.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("site configuration has %q %d times; want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
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
		addr := freeAddr(t)
		var conf bytes.Buffer
		err := nginxConf.Execute(&conf, map[string]any{
			"Dir":  dir,
			"Root": os.Geteuid() == 0, // workers keep root's access to dir
			"Site": replaceOnce(t, site, "listen 80;", "listen "+addr+";"),
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
		n := &nginxProc{proc: startProc(t, "nginx "+addr, cmd), addr: addr, dir: dir}
		err = n.waitHealthy()
		if err == nil {
			return n
		}
		if !n.exited() || !strings.Contains(n.out.String(), "Address already in use") || attempt >= 20 {
			t.Fatalf("nginx on %s: %v\n%s\nconfiguration:\n%s", addr, err, n.out, conf.String())
		}
	}
}

// waitHealthy waits until GET /healthz through nginx answers 200.
func (n *nginxProc) waitHealthy() error {
	c := newClient()
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(waitTimeout)
	for {
		if n.exited() {
			return fmt.Errorf("exited: %v", n.waitErr)
		}
		if code := status(c, n.base()+"/healthz"); code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET /healthz through nginx not 200 after %v", waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newClient returns an HTTP/1.1 client with connections of its own.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{}}
}

// status returns the status of GET u (0 when it could not be reached).
func status(c *http.Client, u string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// token mints a token with testSecret.
func token(t *testing.T, c hub.Claims) string {
	t.Helper()
	key, err := jwtauth.NewKey("HS256", []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwtauth.Sign(key, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publisherToken may publish to every topic.
func publisherToken(t *testing.T) string { return token(t, hub.Claims{Publish: []string{"*"}}) }

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
func subscribers(h *hubNode) int {
	c := newClient()
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + h.addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		var n float64
		if _, err := fmt.Sscanf(line, "ssekit_subscribers %g", &n); err == nil {
			return int(n)
		}
	}
	return -1
}

// waitSubscribers waits until the hub counts want subscribers.
func waitSubscribers(t *testing.T, h *hubNode, want int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := subscribers(h)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub %s: %d subscribers after %v; want %d", h.addr, got, waitTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
