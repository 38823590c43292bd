package e2e_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
)

// listenEvent is one line of "ssekit listen --json".
type listenEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// TestCLIPublishListen publishes through "ssekit publish" with a token from
// "ssekit token" and receives through "ssekit listen --json", all three the
// real binary against a real hub process.
func TestCLIPublishListen(t *testing.T) {
	h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--jwt-key", testSecret, "--allow-anonymous", "--data-dir", t.TempDir()}})

	tok, stderr, code := ssekit.Run(t, []string{"SSEKIT_JWT_KEY=" + testSecret}, "", "token", "--publish", "cli", "--publish", "cli-other")
	if code != 0 {
		t.Fatalf("ssekit token: exit code %d: %s", code, stderr)
	}
	tok = strings.TrimSpace(tok)

	listenOut, listenErr := &e2etest.LockedBuffer{}, &e2etest.LockedBuffer{}
	listen := ssekit.Command(nil, "listen", "--json", "--max-events", "3", "--timeout", "60s", h.URL()+"?topic=cli")
	listen.Stdout, listen.Stderr = listenOut, listenErr
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	var listenErrExit error
	listenDone := make(chan struct{})
	go func() {
		listenErrExit = listen.Wait()
		close(listenDone)
	}()
	t.Cleanup(func() {
		listen.Process.Kill()
		<-listenDone
	})
	// Publish only once the listener is subscribed: these are live updates.
	listenErr.WaitFor(t, "connected to")

	publishes := []struct {
		name  string
		env   []string
		stdin string
		args  []string
		want  listenEvent // ID "" : the id publish printed
	}{
		{"token from SSEKIT_TOKEN, hub from --hub", []string{"SSEKIT_TOKEN=" + tok}, "",
			[]string{"publish", "--hub", h.URL(), "--topic", "cli", "hello"}, listenEvent{Type: "message", Data: "hello"}},
		{"hub from SSEKIT_HUB, data from stdin, a type", []string{"SSEKIT_TOKEN=" + tok, "SSEKIT_HUB=" + h.URL()}, "two\nlines\n",
			[]string{"publish", "--topic", "cli", "--type", "note", "-"}, listenEvent{Type: "note", Data: "two\nlines\n"}},
		{"token from --token, own id, alternate topic", nil, "",
			[]string{"publish", "--hub", h.URL(), "--token", tok, "--topic", "cli-other", "--topic", "cli", "--id", "my-id", "{\"n\":3}"}, listenEvent{Type: "message", Data: "{\"n\":3}", ID: "my-id"}},
	}
	var want []listenEvent
	for _, p := range publishes {
		stdout, stderr, code := ssekit.Run(t, p.env, p.stdin, p.args...)
		if code != 0 || stderr != "" {
			t.Fatalf("%s: exit code %d, stderr %q", p.name, code, stderr)
		}
		id := strings.TrimSuffix(stdout, "\n")
		if id == "" || strings.Contains(id, "\n") {
			t.Fatalf("%s: stdout %q; want one id", p.name, stdout)
		}
		if p.want.ID != "" && id != p.want.ID {
			t.Errorf("%s: printed id %q; want %q", p.name, id, p.want.ID)
		}
		w := p.want
		w.ID = id
		want = append(want, w)
	}

	select {
	case <-listenDone:
		if listenErrExit != nil {
			t.Fatalf("ssekit listen: %v\nstderr: %s", listenErrExit, listenErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("ssekit listen did not end after 3 events; stdout:\n%s", listenOut)
	}
	var got []listenEvent
	sc := bufio.NewScanner(strings.NewReader(listenOut.String()))
	for sc.Scan() {
		var ev listenEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("listen printed a line that is not JSON: %q", sc.Text())
		}
		got = append(got, ev)
	}
	if len(got) != len(want) {
		t.Fatalf("listen got %d events %+v; want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: got %+v; want %+v", i, got[i], want[i])
		}
	}
}

// TestCLIPublishRefused: a refusal is exit status 1 and one line on stderr
// carrying the hub's status and reason.
func TestCLIPublishRefused(t *testing.T) {
	h := ssekit.Start(t, e2etest.HubSpec{Args: []string{"--jwt-key", testSecret, "--data-dir", t.TempDir()}})
	tok, _, _ := ssekit.Run(t, nil, "", "token", "--key", testSecret, "--publish", "allowed")
	tests := []struct {
		name   string
		env    []string
		args   []string
		stderr string
	}{
		{"topic not in the token", []string{"SSEKIT_TOKEN=" + strings.TrimSpace(tok)}, []string{"--topic", "forbidden", "x"},
			"ssekit publish: the hub answered 403 Forbidden: token may not publish to topic \"forbidden\"\n"},
		{"no token", nil, []string{"--topic", "allowed", "x"},
			"ssekit publish: the hub answered 401 Unauthorized: "},
		{"token signed with another key", []string{"SSEKIT_TOKEN=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl"}, []string{"--topic", "allowed", "x"},
			"ssekit publish: the hub answered 401 Unauthorized: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := ssekit.Run(t, append(tt.env, "SSEKIT_HUB="+h.URL()), "", append([]string{"publish"}, tt.args...)...)
			if code != 1 || stdout != "" {
				t.Errorf("exit code %d, stdout %q; want 1 and nothing", code, stdout)
			}
			if !strings.HasPrefix(stderr, tt.stderr) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q; want one line starting with %q", stderr, tt.stderr)
			}
		})
	}
}
