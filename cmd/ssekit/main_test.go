package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/ssetest"
)

// fakeClock returns start, then start+step, start+2·step… one per call.
func fakeClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	next := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := next
		next = next.Add(step)
		return now
	}
}

// result is what one run of ssekit printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

// testMain returns a Main with an empty environment and in-memory stdio.
func testMain() (*Main, *e2etest.LockedBuffer, *e2etest.LockedBuffer) {
	stdout, stderr := &e2etest.LockedBuffer{}, &e2etest.LockedBuffer{}
	return &Main{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr}, stdout, stderr
}

// run runs ssekit with args as main does, with a deadline so a hung
// command fails the test instead of hanging it.
func run(t *testing.T, m *Main, args ...string) result {
	t.Helper()
	if m == nil {
		m, _, _ = testMain()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	code := m.Exit(m.Run(ctx, args))
	if ctx.Err() != nil {
		t.Fatalf("ssekit %s: did not finish in time", strings.Join(args, " "))
	}
	return result{
		stdout: m.Stdout.(*e2etest.LockedBuffer).String(),
		stderr: m.Stderr.(*e2etest.LockedBuffer).String(),
		code:   code,
	}
}

// servers starts the handler over HTTP/1.1 and over HTTP/2 (TLS), and runs
// f for each with a Main whose HTTP client trusts the server.
func servers(t *testing.T, h http.Handler, f func(t *testing.T, srv *httptest.Server, m *Main)) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		srv := ssetest.NewServer(t, proto, h)
		m, _, _ := testMain()
		m.HTTPClient = srv.Client()
		f(t, srv, m)
	})
}

func TestHelp(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdoutHas  string
		stderr     string
		wantStdout bool
	}{
		{"help", []string{"help"}, 0, "listen     watch any SSE endpoint", "", true},
		{"--help", []string{"--help"}, 0, "demo ", "", true},
		{"help listen", []string{"help", "listen"}, 0, "Usage: ssekit listen [flags] URL", "", true},
		{"listen --help", []string{"listen", "--help"}, 0, "--max-events N", "", true},
		{"listen -h", []string{"listen", "-h"}, 0, "-H 'Name: value'", "", true},
		{"demo --help", []string{"demo", "--help"}, 0, "--addr HOST:PORT", "", true},
		{"version", []string{"version"}, 0, "ssekit ", "", true},
		{"unknown command", []string{"frobnicate"}, 2, "", "ssekit: unknown command \"frobnicate\"; run 'ssekit help' for the list\n", false},
		{"unknown flag", []string{"listen", "--frob", "http://x"}, 2, "", "ssekit listen: flag provided but not defined: -frob (see 'ssekit listen --help')\n", false},
		{"listen without URL", []string{"listen"}, 2, "", "ssekit listen: want exactly one URL, got 0 arguments (see 'ssekit listen --help')\n", false},
		{"listen with a bad URL", []string{"listen", "ftp://example.com/"}, 2, "", "ssekit listen: \"ftp://example.com/\" is not an http:// or https:// URL\n", false},
		{"listen with a bad header", []string{"listen", "-H", "NoColon", "http://127.0.0.1/"}, 2, "", "ssekit listen: invalid value \"NoColon\" for flag -H: want 'Name: value', got \"NoColon\" (see 'ssekit listen --help')\n", false},
		{"listen with a bad --color", []string{"listen", "--color", "sometimes", "http://127.0.0.1/"}, 2, "", "ssekit listen: --color must be auto, always or never, not \"sometimes\"\n", false},
		{"version with an argument", []string{"version", "x"}, 2, "", "ssekit version: takes no arguments\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, nil, tt.args...)
			if got.code != tt.code {
				t.Errorf("exit code %d; want %d (stderr %q)", got.code, tt.code, got.stderr)
			}
			if got.stderr != tt.stderr {
				t.Errorf("stderr %q; want %q", got.stderr, tt.stderr)
			}
			if tt.wantStdout && !strings.Contains(got.stdout, tt.stdoutHas) {
				t.Errorf("stdout %q; want it to contain %q", got.stdout, tt.stdoutHas)
			}
			if !tt.wantStdout && got.stdout != "" {
				t.Errorf("stdout %q; want nothing", got.stdout)
			}
		})
	}
}

// TestNoArguments prints the usage to stderr: running ssekit bare is a
// usage error, but a helpful one.
func TestNoArguments(t *testing.T) {
	got := run(t, nil)
	if got.code != exitUsage {
		t.Errorf("exit code %d; want %d", got.code, exitUsage)
	}
	if got.stdout != "" || !strings.Contains(got.stderr, "Commands:") {
		t.Errorf("stdout %q, stderr %q; want the usage on stderr", got.stdout, got.stderr)
	}
}

// TestEveryCommandHasHelp keeps the table of commands honest: each one
// answers --help with its usage on stdout and exit code 0.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			got := run(t, nil, c.name, "--help")
			if got.code != 0 || !strings.HasPrefix(got.stdout, "Usage: ssekit "+c.name) {
				t.Errorf("exit code %d, stdout %q; want 0 and the usage of %s", got.code, got.stdout, c.name)
			}
		})
	}
}
