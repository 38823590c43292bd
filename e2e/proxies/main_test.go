// Package proxies_test runs real "ssekit serve" processes behind the
// proxies people put in front of a hub, from Debian's packages, with the
// configurations docs/deploying.md shows (testdata/): Caddy and HAProxy
// (nginx has its own suite, e2e/nginx). Each test shortens the proxy's
// idle timeout so it is quick, and shows a stream outliving it because
// of the hub's heartbeats, and being cut without them.
//
// Every process binds 127.0.0.1 and runs in the foreground with its files
// in t.TempDir(). Tests skip where the proxy is not installed, and fail
// instead under SSEKIT_REQUIRE_ALL=1.
package proxies_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/testenv"
)

const testSecret = "e2e-proxies-0123456789abcdef0123456789abcdef"

var ssekit e2etest.Binary

func TestMain(m *testing.M) { os.Exit(e2etest.Main(m, "e2e/proxies", &ssekit)) }

// proxyIdle is the idle timeout the tests give the proxies; heartbeat is
// the hub's, well below it.
const (
	proxyIdle = "1s"
	heartbeat = "250ms"
	// outlive is how long a stream is kept: several proxy timeouts.
	outlive = 3500 * time.Millisecond
)

func startHub(t *testing.T, heartbeat string) *e2etest.Hub {
	t.Helper()
	return ssekit.Start(t, e2etest.HubSpec{Args: []string{"--jwt-key", testSecret,
		"--allow-anonymous", "--data-dir", t.TempDir(), "--heartbeat", heartbeat}})
}

func readConf(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// proxy is one proxy process listening on addr.
type proxy struct {
	*e2etest.Process
	addr string
}

func (p *proxy) hubURL() string { return "http://" + p.addr + "/.well-known/mercure" }

// startProxy writes conf(addr) to a file in a fresh directory, runs
// argv(file, dir) there, and waits until GET /healthz through it answers
// 200. A port taken meanwhile is retried on another.
func startProxy(t *testing.T, name string, conf func(addr string) string, argv func(file, dir string) []string) *proxy {
	t.Helper()
	bin := testenv.NeedCommand(t, name)
	for attempt := 0; ; attempt++ {
		dir := t.TempDir()
		addr := e2etest.FreeAddr(t)
		file := filepath.Join(dir, "proxy.conf")
		text := conf(addr)
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, argv(file, dir)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		p := &proxy{Process: e2etest.StartProcess(t, name+" "+addr, cmd), addr: addr}
		c := e2etest.NewClient(t)
		deadline := time.Now().Add(30 * time.Second)
		for !p.Exited() && e2etest.Status(c, "http://"+addr+"/healthz") != http.StatusOK && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !p.Exited() && e2etest.Status(c, "http://"+addr+"/healthz") == http.StatusOK {
			return p
		}
		inUse := strings.Contains(strings.ToLower(p.Out.String()), "address already in use")
		if !inUse || attempt >= 20 {
			t.Fatalf("%s on %s did not come up:\n%s\nconfiguration:\n%s", name, addr, p.Out, text)
		}
		p.Kill()
	}
}

func mustPublish(t *testing.T, c *http.Client, hubURL, topic, data string) string {
	t.Helper()
	id, err := e2etest.Publish(t.Context(), c, hubURL, e2etest.PublisherToken(t, testSecret), url.Values{"topic": {topic}, "data": {data}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// checkThrough subscribes through the proxy and checks what the recipe
// promises: events one by one as published (nothing buffered), and a
// stream that outlives the proxy's idle timeout thanks to heartbeats.
func checkThrough(t *testing.T, p *proxy) {
	c := e2etest.NewClient(t)
	t.Run("EventsOneByOne", func(t *testing.T) {
		s := e2etest.OpenStream(t, c, p.hubURL(), "topic=one-by-one", "", 30*time.Second)
		for i := range 3 {
			id := mustPublish(t, c, p.hubURL(), "one-by-one", "u"+string(rune('0'+i)))
			if ev := s.Next(t); ev.ID != id {
				t.Fatalf("event %d: got %+v; want id %q", i, ev, id)
			}
		}
	})
	t.Run("OutlivesIdleTimeout", func(t *testing.T) {
		s := e2etest.OpenStream(t, c, p.hubURL(), "topic=idle", "", 30*time.Second)
		var beats atomic.Int64
		s.Dec.OnComment = func(string) { beats.Add(1) }
		time.Sleep(outlive)
		id := mustPublish(t, c, p.hubURL(), "idle", "after a long silence")
		if ev := s.Next(t); ev.ID != id {
			t.Fatalf("got %+v; want id %q", ev, id)
		}
		if n := beats.Load(); n < 3 {
			t.Errorf("%d heartbeats over %v; want several", n, outlive)
		}
	})
}

// checkCutWithoutHeartbeats: with the hub's heartbeats off, the same
// proxy ends an idle stream (so the timeout the test relies on is real).
func checkCutWithoutHeartbeats(t *testing.T, p *proxy) {
	c := e2etest.NewClient(t)
	s := e2etest.OpenStream(t, c, p.hubURL(), "topic=silent", "", 30*time.Second)
	ended := make(chan error, 1)
	go func() {
		_, err := s.Dec.Next()
		ended <- err
	}()
	poll.Until(t, "the proxy to cut the silent stream", 30*time.Second, func() bool {
		select {
		case err := <-ended:
			t.Logf("stream ended: %v", err)
			return true
		default:
			return false
		}
	})
}

// checkLintNames: "ssekit lint" through the proxy cutting a silent stream
// reports the idle cut and names the recipe to follow.
func checkLintNames(t *testing.T, p *proxy, recipe string) {
	stdout, stderr, _ := ssekit.Run(t, nil, "", "lint", "--json", "--duration", "5s", "--heartbeat", "500ms", p.hubURL()+"?topic=lint")
	var rep struct {
		Findings []struct{ Rule, Fix string }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("lint --json: %v\n%s\n%s", err, stdout, stderr)
	}
	for _, f := range rep.Findings {
		if f.Rule == "proxy-idle-cut" && strings.Contains(f.Fix, recipe) {
			return
		}
	}
	t.Errorf("lint through the proxy: %s; want a proxy-idle-cut finding naming %s", stdout, recipe)
}
