// Package e2e_test runs the real ssekit binary as a separate process, as a
// user or an operator would: publish and subscribe through the CLI, kill -9
// in the middle of publishing, graceful shutdown on SIGTERM, a real browser
// across a hub restart, h2c and TLS.
//
// TestMain builds the binary once; each test starts its own hub processes
// on 127.0.0.1 with a data directory in t.TempDir().
package e2e_test

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
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
)

// testSecret is the HS256 key the tests' hubs verify tokens with.
const testSecret = "e2e-0123456789abcdef0123456789abcdef-secret"

// ssekitBin is the binary TestMain built: set once before any test runs,
// read-only after.
var ssekitBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ssekit-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ssekitBin = filepath.Join(dir, "ssekit")
	build := exec.Command("go", "build", "-o", ssekitBin, "github.com/ssekit/sse/cmd/ssekit")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building ssekit:", err)
		return 1
	}
	return m.Run()
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cleanEnv is the test's environment without SSEKIT_* settings (other than
// SSEKIT_REQUIRE_ALL), plus extra NAME=value pairs.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SSEKIT_") && !strings.HasPrefix(kv, "SSEKIT_REQUIRE_ALL=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// hubProc is one running "ssekit serve" process.
type hubProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string // HOST:PORT it listens on
	scheme  string // http or https
	stderr  *lockedBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// hubSpec says how to start a hub.
type hubSpec struct {
	addr string   // HOST:PORT; "" picks a free port on 127.0.0.1
	args []string // flags after "serve --addr …"
	env  []string // NAME=value pairs added to a clean environment
	dir  string   // working directory ("" : the test's)
	// noAddrFlag leaves --addr out (the address is then in env as
	// SSEKIT_ADDR=addr, or the default).
	noAddrFlag bool
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago. startHub retries with another when a process takes it in between.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startHub runs "ssekit serve" and waits until it listens. With spec.addr
// empty it picks a free port, and another if that one was taken meanwhile;
// with a fixed address it retries while the port is still in use (a hub
// restarting on the port of one just killed). The process is killed when
// the test ends, if it still runs; its stderr is logged if the test failed.
func startHub(t *testing.T, spec hubSpec) *hubProc {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 0; ; attempt++ {
		addr := spec.addr
		if addr == "" {
			addr = freeAddr(t)
		}
		p := launchHub(t, addr, spec)
		err := p.waitListening(deadline)
		if err == nil {
			return p
		}
		inUse := strings.Contains(p.stderr.String(), "address already in use")
		if !inUse || time.Now().After(deadline) || attempt > 50 {
			t.Fatalf("ssekit serve on %s: %v\nstderr:\n%s", addr, err, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func launchHub(t *testing.T, addr string, spec hubSpec) *hubProc {
	t.Helper()
	args := []string{"serve"}
	env := spec.env
	if spec.noAddrFlag {
		env = append(env, "SSEKIT_ADDR="+addr)
	} else {
		args = append(args, "--addr", addr)
	}
	args = append(args, spec.args...)
	p := &hubProc{t: t, addr: addr, scheme: "http", stderr: &lockedBuffer{}, done: make(chan struct{})}
	for _, a := range spec.args {
		if a == "--tls-cert" {
			p.scheme = "https"
		}
	}
	p.cmd = exec.Command(ssekitBin, args...)
	p.cmd.Env = cleanEnv(env...)
	p.cmd.Dir = spec.dir
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("hub %s (pid %d) stderr:\n%s", addr, p.cmd.Process.Pid, p.stderr)
		}
	})
	return p
}

// waitListening waits for the hub's "hub listening" log line, or its exit.
func (p *hubProc) waitListening(deadline time.Time) error {
	for {
		if strings.Contains(p.stderr.String(), "hub listening") {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before listening: %v", p.waitErr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("not listening in time")
		}
	}
}

// kill sends SIGKILL, as kill -9 does, and waits for the process to go.
func (p *hubProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// wait waits for the process to exit and returns what Wait said.
func (p *hubProc) wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		p.t.Fatalf("hub %s did not exit within %s", p.addr, timeout)
		return nil
	}
}

// base is the hub's base URL; url its Mercure endpoint.
func (p *hubProc) base() string { return p.scheme + "://" + p.addr }
func (p *hubProc) url() string  { return p.base() + "/.well-known/mercure" }

// newClient returns a plain HTTP/1.1 client with its own connections, so
// that no connection to a killed hub is reused.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
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

// publish posts one update and returns its id, or an error for a failed
// request or a status other than 200.
func publish(ctx context.Context, c *http.Client, hubURL, tok string, form url.Values) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hubURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("publish: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// mustPublish publishes data to topic with the given id ("" : the hub's).
func mustPublish(t *testing.T, c *http.Client, hubURL, topic, id, data string) string {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}}
	if id != "" {
		form.Set("id", id)
	}
	got, err := publish(t.Context(), c, hubURL, publisherToken(t), form)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// stream is an open subscription.
type stream struct {
	resp *http.Response
	dec  *sse.Decoder
	stop context.CancelFunc
}

// subscribe opens a subscription to hubURL?query, sending lastEventID as
// the Last-Event-ID header when it is not empty. The stream is given up
// after timeout, so a missing event fails the test instead of hanging it.
func subscribe(t *testing.T, c *http.Client, hubURL, query, lastEventID string, timeout time.Duration) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hubURL+"?"+query, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("subscribing to %s?%s: %v", hubURL, query, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("subscribing to %s?%s: %s %s: %s", hubURL, query, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	s := &stream{resp: resp, dec: sse.NewDecoder(resp.Body), stop: cancel}
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.stop()
	s.resp.Body.Close()
}

// next returns the next event, failing the test on an error.
func (s *stream) next(t *testing.T) sse.Event {
	t.Helper()
	ev, err := s.dec.Next()
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return ev
}

// until reads events up to and including the one with the given id.
func (s *stream) until(t *testing.T, id string) []sse.Event {
	t.Helper()
	var got []sse.Event
	for {
		ev := s.next(t)
		got = append(got, ev)
		if ev.ID == id {
			return got
		}
	}
}

// runSSEKit runs the binary to completion with a clean environment plus
// env, and returns its stdout, stderr and exit code.
func runSSEKit(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ssekitBin, args...)
	cmd.Env = cleanEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		code = exit.ExitCode()
	default:
		t.Fatalf("ssekit %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), code
}
