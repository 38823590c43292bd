// Package redistest runs a real redis-server process for tests: on
// 127.0.0.1, on a free port, with its files in a temporary directory, and
// stopped when the test ends. Tests skip (or fail under
// SSEKIT_REQUIRE_ALL=1) where redis-server is not installed.
//
//	srv := redistest.Start(t, redistest.Options{})
//	store, err := redisstream.Open(ctx, srv.URL(), redisstream.Config{})
//
// Stop then Relaunch (or Restart) restart it on the same port and
// directory, as an operator would; with Options.AppendOnly the data
// survives.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/testenv"
)

// startTimeout bounds the wait for a started server to answer PING (it may
// be loading its append-only file).
const startTimeout = 20 * time.Second

// Options configures a server.
type Options struct {
	// AppendOnly turns on the append-only file (appendonly yes,
	// appendfsync everysec), so data survives a Stop and Start. Without it
	// the server keeps nothing on disk.
	AppendOnly bool
	// Args are extra redis-server arguments, such as "--maxmemory", "10mb".
	Args []string
}

// Server is one redis-server, started by Start.
type Server struct {
	t    testing.TB
	bin  string
	opts Options
	// Addr is HOST:PORT the server listens on; it keeps it across restarts.
	Addr string
	// Dir is the server's working directory (its append-only file).
	Dir string

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *os.File
}

// Start starts a redis-server and registers its stop with t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := testenv.NeedCommand(t, "redis-server")
	s := &Server{t: t, bin: bin, opts: opts, Dir: t.TempDir()}
	var err error
	for range 5 { // another process may take the free port in between
		s.Addr = freeAddr(t)
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

// URL is the server's store URL: redis://ADDR/0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Port is the server's port number.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs the server on s.Addr and waits for it to answer PING.
func (s *Server) start() error {
	host, port, _ := net.SplitHostPort(s.Addr)
	args := []string{
		"--port", port, "--bind", host, "--save", "", "--dir", s.Dir,
		"--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
	}
	if s.opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, s.opts.Args...)
	logf, err := os.OpenFile(s.Dir+"/redis.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done, s.log = cmd, done, logf
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr) {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited at start; its log:\n%s", s.Addr, s.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on %s did not answer PING within %v; its log:\n%s", s.Addr, startTimeout, s.Log())
		}
	}
}

// ping reports whether a server answers PING with PONG (not LOADING).
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Log returns what the server wrote to its log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.Dir + "/redis.log")
	return string(b)
}

// Stop ends the server with SIGTERM, as an operator's restart does (it
// flushes the append-only file), and waits for it to exit.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends the server with SIGKILL and waits for it to exit. It does
// nothing when the server is not running.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart stops the server (SIGTERM) and starts it again on the same
// address and directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Relaunch()
}

// Relaunch starts the server again after Stop or Kill, on the same address
// and directory, and waits until it answers PING (after loading its data).
func (s *Server) Relaunch() {
	s.t.Helper()
	var err error
	for range 50 { // the old socket may linger for a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: relaunch: %v", err)
}
