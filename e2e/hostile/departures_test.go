package hostile_test

// Departures and slots: clients that leave without a word, hold many
// streams, or read a byte now and then. A departed HTTP/1.1 client used to
// keep its per-client slot until the second heartbeat (never with
// --heartbeat -1), so a page reload got 429; a hub out of file descriptors
// failed accepts instead of answering; a client that read a little now and
// then kept its slot forever.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/poll"
)

// attackerAddr is the loopback address the attacking client connects
// from, so per-client limits tell it from the test's own subscribers
// (127.0.0.1). Linux routes all of 127.0.0.0/8 to the loopback interface.
const attackerAddr = "127.0.0.2"

// openRawStream subscribes to query on h over a TCP connection from the
// local address from ("" for any) and reads the response head; it returns
// the connection, its reader and the status. The connection is closed when
// the test ends.
func openRawStream(t *testing.T, h *e2etest.Hub, from, query string) (*net.TCPConn, *bufio.Reader, int) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", h.Addr)
	if err != nil {
		t.Fatalf("connecting from %q: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /.well-known/mercure?"+query+" HTTP/1.1\r\nHost: "+h.Addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("subscribing: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
	}
	_ = c.SetDeadline(time.Time{})
	return c.(*net.TCPConn), br, resp.StatusCode
}

// watchAcked starts a subscriber on topic and a publisher; publish
// publishes one more acknowledged update, and check (at the end of the
// attack) asserts the subscriber received every acknowledged one.
func watchAcked(t *testing.T, h *e2etest.Hub, topic string) (publish func(), check func()) {
	t.Helper()
	sub := e2etest.Subscribe(t, []*e2etest.Hub{h}, 0, topic, "")
	pub := e2etest.NewPublisher([]*e2etest.Hub{h}, e2etest.PublisherToken(t, testSecret))
	n := 0
	publish = func() {
		t.Helper()
		n++
		pub.MustPublish(t, topic, fmt.Sprintf("%s-%d", topic, n))
	}
	check = func() {
		t.Helper()
		e2etest.CheckExactly(t, "the watcher of "+topic, sub.WaitIDs(t, pub.Acked(topic)), pub.Acked(topic))
	}
	return publish, check
}

// TestDepartedClientFreesItsSlot: under a per-client limit of one, a
// client that leaves (closing, resetting, or shutting down its side of the
// connection) is ended at once, whatever the heartbeat: its reload is
// served, not refused with 429, and others are served throughout.
func TestDepartedClientFreesItsSlot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("departures are watched with epoll on Linux only; elsewhere a write notices them")
	}
	leaves := []struct {
		name  string
		leave func(c *net.TCPConn)
	}{
		{"Close", func(c *net.TCPConn) { c.Close() }},
		{"Reset", func(c *net.TCPConn) { c.SetLinger(0); c.Close() }},
		{"HalfClose", func(c *net.TCPConn) { c.CloseWrite() }},
	}
	for _, heartbeat := range []string{"-1s", "1h"} {
		t.Run("heartbeat="+heartbeat, func(t *testing.T) {
			h := startHub(t, "--heartbeat", heartbeat, "--max-subscribers-per-client", "1")
			publish, check := watchAcked(t, h, "watched")
			for _, l := range leaves {
				t.Run(l.name, func(t *testing.T) {
					for reload := range 5 {
						var c *net.TCPConn
						poll.Until(t, fmt.Sprintf("reload %d served (the previous stream's slot freed)", reload), 2*time.Second, func() bool {
							var status int
							c, _, status = openRawStream(t, h, attackerAddr, "topic=page")
							return status == http.StatusOK
						})
						if _, _, second := openRawStream(t, h, attackerAddr, "topic=page"); second != http.StatusTooManyRequests {
							t.Fatalf("second stream from one client = %d; want 429 (the limit holds)", second)
						}
						l.leave(c)
						publish()
					}
				})
			}
			check()
		})
	}
}

// TestHubAtItsFileLimitAnswers503: a hub whose open-file limit is low
// derives its subscriber limit from it, so a client holding streams until
// the limit gets 503 with Retry-After (not a failed accept), the hub keeps
// answering health checks and publishes, and serves again once the
// streams go.
func TestHubAtItsFileLimitAnswers503(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs ulimit -n and the epoll watcher (Linux)")
	}
	const openFiles = 200 // the hub then takes 200 - 128 = 72 subscribers
	cmd := ssekit.Command(e2etest.CleanEnv(), "serve")
	h := startUnderFileLimit(t, cmd, openFiles)
	if !strings.Contains(h.Out.String(), "max_subscribers=72") {
		t.Fatalf("the hub did not derive 72 subscribers from %d open files; its log:\n%s", openFiles, h.Out.String())
	}
	publish, check := watchAcked(t, h, "watched") // one of the 72
	for _, shape := range []string{"OneAddress", "ManyAddresses"} {
		t.Run(shape, func(t *testing.T) {
			from := func(i int) string {
				if shape == "ManyAddresses" {
					return fmt.Sprintf("127.0.1.%d", i+1)
				}
				return attackerAddr
			}
			var conns []*net.TCPConn
			for i := range 71 {
				c, _, status := openRawStream(t, h, from(i), "topic=t"+fmt.Sprint(i))
				if status != http.StatusOK {
					t.Fatalf("stream %d = %d; want 200 below the limit", i, status)
				}
				conns = append(conns, c)
			}
			c, _, status := openRawStream(t, h, from(71), "topic=over")
			c.Close()
			if status != http.StatusServiceUnavailable {
				t.Fatalf("stream over the limit = %d; want 503", status)
			}
			if got := h.Status("/healthz"); got != http.StatusOK {
				t.Fatalf("/healthz at the limit = %d; want 200", got)
			}
			publish()
			for _, c := range conns {
				c.Close()
			}
			poll.Until(t, "a stream served again once the others left", 5*time.Second, func() bool {
				c, _, status := openRawStream(t, h, from(0), "topic=again")
				c.Close()
				return status == http.StatusOK
			})
		})
	}
	check()
}

// startUnderFileLimit starts the hub command cmd (ssekit serve, flags to
// come) through sh with "ulimit -n openFiles", on a free loopback port
// with a fresh data directory and the test secret, and waits until it
// listens.
func startUnderFileLimit(t *testing.T, cmd *exec.Cmd, openFiles int) *e2etest.Hub {
	t.Helper()
	addr := e2etest.FreeAddr(t)
	args := append(cmd.Args[1:], "--addr", addr, "--data-dir", t.TempDir(), "--jwt-key", testSecret, "--allow-anonymous")
	cmd.Args = append([]string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, openFiles), cmd.Path}, args...)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("no sh to set the open-file limit with: %v", err)
	}
	cmd.Path = sh
	h := &e2etest.Hub{Addr: addr, Scheme: "http", Client: e2etest.NewClient(t)}
	h.Process = e2etest.StartProcess(t, "hub "+addr, cmd)
	h.WaitListening(t)
	return h
}

// TestTrickleReaderLosesItsSlot: a client that reads, but a little at a
// time (1 KiB every 50 ms, under the 64 KiB/s asked here) while the hub
// has far more for it, is ended as slow, its connection reset, and its
// slot freed; the watcher receives everything meanwhile. Two shapes: one
// stream, and one stream per topic under a bursty publisher.
func TestTrickleReaderLosesItsSlot(t *testing.T) {
	h := startHub(t, "--min-write-rate", "65536", "--write-timeout", "2s", "--queue-size", "100000",
		"--max-subscribers-per-client", "1", "--store", "memory")
	publish, check := watchAcked(t, h, "watched")
	tok := e2etest.PublisherToken(t, testSecret)
	big := strings.Repeat("b", 60<<10)
	for _, shape := range []string{"OneTopic", "Star"} {
		t.Run(shape, func(t *testing.T) {
			query := "topic=flood"
			if shape == "Star" {
				query = "topic=*"
			}
			// The previous shape's probe holds the slot until its departure
			// is noticed (within a second): wait for it, bounded.
			var c *net.TCPConn
			var br *bufio.Reader
			poll.Until(t, "the client's slot free for the trickle reader", 5*time.Second, func() bool {
				var status int
				c, br, status = openRawStream(t, h, attackerAddr, query)
				if status != http.StatusOK {
					c.Close()
				}
				return status == http.StatusOK
			})
			_ = c.SetReadBuffer(16 << 10)
			ended := make(chan error, 1)
			go func() {
				buf := make([]byte, 1<<10)
				for {
					time.Sleep(50 * time.Millisecond)
					if _, err := io.ReadFull(br, buf); err != nil {
						ended <- err
						return
					}
				}
			}()
			deadline := time.After(60 * time.Second)
			for i := 0; ; i++ {
				select {
				case err := <-ended:
					if !isReset(err) {
						t.Errorf("the trickle reader's stream ended with %v; want a reset", err)
					}
					publish()
					poll.Until(t, "the trickle reader's slot freed", 5*time.Second, func() bool {
						c, _, status := openRawStream(t, h, attackerAddr, "topic=probe")
						c.Close()
						return status == http.StatusOK
					})
					return
				case <-deadline:
					t.Fatal("the trickle reader kept its stream for 60 s")
				default:
				}
				if _, err := e2etest.Publish(t.Context(), h.Client, h.URL(), tok, url.Values{"topic": {"flood"}, "data": {big}}); err != nil {
					t.Fatalf("publishing the flood: %v", err)
				}
				if i%20 == 0 {
					publish()
				}
			}
		})
	}
	check()
}

// isReset reports whether err is the connection reset by the hub.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
