package e2e_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/testenv"
)

// TestServeNewcomer runs "ssekit serve" with no flags, as a newcomer does
// (the port comes from SSEKIT_ADDR, which also proves an environment twin
// takes effect): it creates the development key in ./ssekit-data, prints
// the UI's address and a publish command, and that command, pasted into a
// shell, publishes.
func TestServeNewcomer(t *testing.T) {
	dir := t.TempDir()
	h := ssekit.Start(t, e2etest.HubSpec{Dir: dir, NoAddrFlag: true})

	if fi, err := os.Stat(filepath.Join(dir, "ssekit-data", "dev-jwt-secret")); err != nil {
		t.Fatalf("no development key: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("development key mode %v; want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, "ssekit-data", "hub.db")); err != nil {
		t.Errorf("no bolt store in ./ssekit-data: %v", err)
	}
	out := h.Out.WaitFor(t, "ssekit publish")
	if want := "UI:        http://" + h.Addr + "/\n"; !strings.Contains(out, want) {
		t.Errorf("serve did not print the UI address %q:\n%s", want, out)
	}
	var command string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if _, cmd, ok := strings.Cut(sc.Text(), "   and   "); ok && strings.HasPrefix(cmd, "SSEKIT_TOKEN=") {
			command = cmd
		}
	}
	if !strings.HasSuffix(command, "ssekit publish --hub "+h.URL()+" --topic demo hello") {
		t.Fatalf("serve printed no publish command for this hub:\n%s", out)
	}

	// Paste the command into a shell, with ssekit in PATH.
	sh := exec.Command(testenv.NeedCommand(t, "sh"), "-c", command)
	sh.Env = e2etest.CleanEnv("PATH=" + ssekit.Dir() + string(os.PathListSeparator) + os.Getenv("PATH"))
	got, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, got)
	}
	id := strings.TrimSpace(string(got))

	// Anonymous subscribers are allowed with the development key.
	s := e2etest.OpenStream(t, e2etest.NewClient(t), h.URL(), "topic=demo&lastEventID=earliest", "", 60*time.Second)
	if ev := s.Next(t); ev.ID != id || ev.Data != "hello" {
		t.Errorf("got %+v; want id %q, data hello", ev, id)
	}

	// "ssekit token" finds the same key in ./ssekit-data and its token
	// publishes.
	tokCmd := ssekit.Command(nil, "token", "--publish", "demo")
	tokCmd.Dir = dir
	tok, err := tokCmd.Output()
	if err != nil {
		t.Fatalf("ssekit token: %v", err)
	}
	_, stderr, code := ssekit.Run(t, []string{"SSEKIT_TOKEN=" + strings.TrimSpace(string(tok)), "SSEKIT_HUB=" + h.URL()}, "", "publish", "--topic", "demo", "again")
	if code != 0 {
		t.Errorf("publishing with the token of 'ssekit token': exit code %d: %s", code, stderr)
	}
}

// TestServeRefusesPublicWithoutKey: on a non-loopback address with no key
// the hub refuses to start, with exit status 2 and one line.
func TestServeRefusesPublicWithoutKey(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	// Port 0: should the refusal ever break, nothing fixed is bound, and
	// the process is killed at the deadline.
	stdout, stderr, code := ssekit.Run(t, nil, "", "serve", "--addr", "0.0.0.0:0", "--data-dir", dataDir)
	if code != 2 {
		t.Errorf("exit code %d; want 2", code)
	}
	if stdout != "" {
		t.Errorf("stdout %q; want nothing", stdout)
	}
	const want = "ssekit serve: refusing to listen on 0.0.0.0:0 without a key"
	if !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q; want one line starting with %q", stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "dev-jwt-secret")); err == nil {
		t.Errorf("a development key was created for a public address")
	}

	// The same through the environment twin.
	_, stderr, code = ssekit.Run(t, []string{"SSEKIT_ADDR=0.0.0.0:0", "SSEKIT_DATA_DIR=" + dataDir}, "", "serve")
	if code != 2 || !strings.HasPrefix(stderr, want) {
		t.Errorf("with SSEKIT_ADDR: exit code %d, stderr %q; want 2 and %q", code, stderr, want)
	}
}

// TestServeHelpEnvTwins: every flag in "ssekit serve --help" names its
// SSEKIT_* environment twin.
func TestServeHelpEnvTwins(t *testing.T) {
	stdout, stderr, code := ssekit.Run(t, nil, "", "serve", "--help")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	lines := strings.Split(stdout, "\n")
	flags := 0
	for i, line := range lines {
		name, ok := strings.CutPrefix(line, "  --")
		if !ok {
			continue
		}
		flags++
		name, _, _ = strings.Cut(name, " ")
		twin := "[SSEKIT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "]"
		if i+1 >= len(lines) || !strings.Contains(lines[i+1], twin) {
			t.Errorf("--%s: help does not name %s", name, twin)
		}
	}
	if flags < 20 {
		t.Errorf("found %d flags in the help; want them all:\n%s", flags, stdout)
	}
}
