package e2e_test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/testenv"
)

// activated runs "ssekit serve args…" as systemd would with
// deploy/ssekit.socket and Type=notify: the listening socket l as file
// descriptor 3 with LISTEN_FDS and LISTEN_PID, and NOTIFY_SOCKET naming a
// datagram socket the test reads. LISTEN_PID must be the hub's own pid,
// which only the process itself knows before it runs: sh sets it and execs.
func activated(t *testing.T, l *net.TCPListener, args ...string) (*e2etest.Process, *net.UnixConn) {
	t.Helper()
	sh := testenv.NeedCommand(t, "sh")
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	notifyPath := filepath.Join(t.TempDir(), "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notify.Close() })
	cmd := exec.Command(sh, append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, string(ssekit), "serve"}, args...)...)
	cmd.Env = e2etest.CleanEnv("LISTEN_FDS=1", "NOTIFY_SOCKET="+notifyPath)
	cmd.ExtraFiles = []*os.File{f}
	return e2etest.StartProcess(t, "activated hub", cmd), notify
}

func TestServeUnderSocketActivation(t *testing.T) {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hub, notify := activated(t, l, "--data-dir", t.TempDir(), "--jwt-key", testSecret)

	notify.SetReadDeadline(time.Now().Add(e2etest.Timeout))
	buf := make([]byte, 256)
	n, err := notify.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("systemd was told %q, %v; want READY=1\n%s", buf[:n], err, hub.Out.String())
	}
	// Ready means serving: the socket systemd passed answers at once.
	c := e2etest.NewClient(t)
	if got := e2etest.Status(c, "http://"+l.Addr().String()+"/readyz"); got != http.StatusOK {
		t.Fatalf("GET /readyz on the activated socket: %d; want 200", got)
	}
	if !strings.Contains(hub.Out.String(), l.Addr().String()) {
		t.Fatalf("the start-up log does not name the activated address %s:\n%s", l.Addr(), hub.Out.String())
	}

	hub.Cmd.Process.Signal(os.Interrupt)
	n, err = notify.Read(buf)
	if err != nil || string(buf[:n]) != "STOPPING=1" {
		t.Fatalf("on SIGINT systemd was told %q, %v; want STOPPING=1", buf[:n], err)
	}
	if err := hub.Wait(e2etest.Timeout); err != nil {
		t.Fatalf("the hub did not exit cleanly: %v\n%s", err, hub.Out.String())
	}
}

// A socket on every interface is not loopback: without a key the hub
// refuses to start, as it does for --addr 0.0.0.0:…, rather than serve a
// development key to the network.
func TestServeUnderSocketActivationWantsAKeyOffLoopback(t *testing.T) {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hub, _ := activated(t, l, "--data-dir", t.TempDir())
	err = hub.Wait(e2etest.Timeout)
	if err == nil || !strings.Contains(hub.Out.String(), "without a key") {
		t.Fatalf("exit %v; want a refusal naming the missing key:\n%s", err, hub.Out.String())
	}
}
