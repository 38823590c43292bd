// Package e2etest holds what the end-to-end suites share to run the real
// ssekit binary as a separate process, as a user or an operator would:
// building the binary once in TestMain, picking free ports, starting
// "ssekit serve" processes and waiting until they listen, publishing with
// retries, subscribers that move from node to node with their
// Last-Event-ID, and the check that each got every acknowledged update
// once, in publish order.
//
// It is for tests only (it imports testing):
//
//	var ssekit e2etest.Binary
//
//	func TestMain(m *testing.M) { os.Exit(e2etest.Main(m, "e2e/redis", &ssekit)) }
//
//	func TestX(t *testing.T) {
//		h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--data-dir", t.TempDir()}})
//		…
//	}
//
// Every process binds 127.0.0.1 only and is killed when its test ends.
package e2etest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timeout bounds every wait of these helpers; nothing is asserted about
// speed, so it is generous.
const Timeout = 40 * time.Second

// Binary is the path of an ssekit binary built by Main.
type Binary string

// Main builds ssekit into a temporary directory, stores its path in *bin,
// runs the tests, removes the directory and returns the exit code for
// os.Exit. name prefixes the messages of a failed build.
func Main(m *testing.M, name string, bin *Binary) int {
	dir, err := os.MkdirTemp("", "ssekit-"+strings.ReplaceAll(name, "/", "-")+"-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ssekit")
	build := exec.Command("go", "build", "-o", path, "github.com/ssekit/sse/cmd/ssekit")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: building ssekit: %v\n", name, err)
		return 1
	}
	*bin = Binary(path)
	return m.Run()
}

// Dir is the directory that holds the binary, to put it in PATH.
func (b Binary) Dir() string { return filepath.Dir(string(b)) }

// Command returns a command that runs the binary with args in a clean
// environment (see CleanEnv) plus env.
func (b Binary) Command(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(string(b), args...)
	cmd.Env = CleanEnv(env...)
	return cmd
}

// Run runs the binary to completion with a clean environment plus env and
// stdin, and returns its stdout, stderr and exit code. It fails the test if
// the binary cannot run or does not finish within a minute.
func (b Binary) Run(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, string(b), args...)
	cmd.Env = CleanEnv(env...)
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

// CleanEnv is the test's environment without SSEKIT_* settings (other
// than SSEKIT_REQUIRE_ALL), so that a developer's settings do not leak into
// the processes under test, plus extra NAME=value pairs.
func CleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SSEKIT_") && !strings.HasPrefix(kv, "SSEKIT_REQUIRE_ALL=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// LockedBuffer collects a process's (or a command's) output in one
// goroutine while the test reads it in another.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor waits up to Timeout until the output contains s, and returns the
// output; it fails the test after that.
func (b *LockedBuffer) WaitFor(t *testing.T, s string) string {
	t.Helper()
	for deadline := time.Now().Add(Timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got := b.String(); strings.Contains(got, s) {
			return got
		}
	}
	t.Fatalf("output never contained %q:\n%s", s, b)
	return ""
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
// Another process may take it in between: HubSpec with no address retries.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrs(t, 1)[0]
}

// FreeAddrs returns n 127.0.0.1 addresses whose ports were free a moment
// ago; they are held together while picked, so they differ.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
