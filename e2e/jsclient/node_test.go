package jsclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/testenv"
)

// TestNodeSuite runs the module's node tests (clients/js/test) with a real
// hub for the ones that need it.
func TestNodeSuite(t *testing.T) {
	node := testenv.NeedCommand(t, "node")
	h := startHub(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dir := clientDir(t)
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "test/")
	cmd.Dir = dir
	cmd.Env = e2etest.CleanEnv(
		"SSEKIT_HUB="+h.Base(),
		"SSEKIT_PUBLISHER_TOKEN="+publisherToken(t),
		"SSEKIT_SUBSCRIBER_TOKEN="+subscriberToken(t),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test in %s: %v\n%s", dir, err, out)
	}
	// The hub tests must have run, not skipped.
	if !strings.Contains(string(out), "receives the hub's updates with a bearer header") || strings.Contains(string(out), "# SKIP") {
		t.Errorf("the hub tests did not run:\n%s", out)
	}
	t.Logf("%s", lastLines(string(out), 9))
}

// TestListenMatchesSsekitListen runs `ssekit listen` and
// clients/js/bin/listen.js with the same flags against the same scripted
// streams: the same stdout (--json lines) and the same exit code.
func TestListenMatchesSsekitListen(t *testing.T) {
	node := testenv.NeedCommand(t, "node")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/404":
			http.Error(w, "no such stream", http.StatusNotFound)
			return
		case "/204":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, "{}")
			return
		case "/hold": // two events, then an open stream until the client goes
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "id: h1\ndata: one\n\ndata: two\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		case "/echo":
			w.Header().Set("Content-Type", "text/event-stream")
			body := new(bytes.Buffer)
			body.ReadFrom(r.Body)
			fmt.Fprintf(w, "data: %s %s %s\ndata: %s\n\n", r.Method, r.Header.Get("X-Test"), r.Header.Get("Last-Event-ID"), body)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "\ufeffretry: 1500\nid: 1\ndata: a\n\n: c\nevent: tick\ndata: \"b\"\r\ndata:\r\n\r\nid: x\x00y\ndata: c\rdata:\td\r\rdata: unterminated")
	}))
	defer srv.Close()

	cases := [][]string{
		{"--json", "--no-reconnect", srv.URL + "/s"},
		{"--json", "--max-events", "2", srv.URL + "/s"},
		{"--json", "--no-reconnect", "-X", "PUT", "-H", "X-Test: yes", "-d", `{"q":1}`, "--last-event-id", "7", srv.URL + "/echo"},
		{"--json", srv.URL + "/404"},
		{"--json", srv.URL + "/204"},
		{"--json", srv.URL + "/json"},
		{"--json", "http://127.0.0.1:9/"},
		{"--json"},
		{"--json", "--max-events", "x", srv.URL},
		{"--json", "ftp://example.test/"},
		{"--json", "--timeout", "1s", srv.URL + "/hold"},
	}
	listenJS := filepath.Join(clientDir(t), "bin", "listen.js")
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			goOut, goCode := runCmd(t, string(ssekit), append([]string{"listen"}, args...)...)
			jsOut, jsCode := runCmd(t, node, append([]string{listenJS}, args...)...)
			if goCode != jsCode {
				t.Errorf("exit code: ssekit listen %d, listen.js %d", goCode, jsCode)
			}
			if goOut != jsOut {
				t.Errorf("stdout differs:\nssekit listen:\n%s\nlisten.js:\n%s", goOut, jsOut)
			}
		})
	}
}

// runCmd runs a command to its end (at most a minute) and returns its
// stdout and exit code.
func runCmd(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = e2etest.CleanEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit) && ctx.Err() == nil:
		if strings.Count(strings.TrimSpace(errOut.String()), "\n") > 3 {
			t.Errorf("%s: too much on stderr:\n%s", filepath.Base(name), errOut.String())
		}
		return out.String(), exit.ExitCode()
	}
	t.Fatalf("%s %v: %v\n%s", name, args, err, errOut.String())
	return "", 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
