package e2e_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

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
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return activatedWith(t, []*os.File{f}, "", args...)
}

// activatedWith passes files as descriptors 3, 4, … named by names
// (LISTEN_FDNAMES, colon-separated; "" for none), as a socket unit with
// several Listen…= lines and a FileDescriptorName= does.
func activatedWith(t *testing.T, files []*os.File, names string, args ...string) (*e2etest.Process, *net.UnixConn) {
	t.Helper()
	sh := testenv.NeedCommand(t, "sh")
	notifyPath := filepath.Join(t.TempDir(), "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notify.Close() })
	cmd := exec.Command(sh, append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, string(ssekit), "serve"}, args...)...)
	env := []string{"LISTEN_FDS=" + strconv.Itoa(len(files)), "NOTIFY_SOCKET=" + notifyPath}
	if names != "" {
		env = append(env, "LISTEN_FDNAMES="+names)
	}
	cmd.Env = e2etest.CleanEnv(env...)
	cmd.ExtraFiles = files
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

// TestServeHTTP3UnderSocketActivation: with ListenStream= and
// ListenDatagram= on one port (deploy/ssekit.socket), the hub serves
// HTTPS on the stream socket and HTTP/3 on the datagram one, both
// systemd's: it opens no UDP socket of its own (which, on port 443, it
// could not without a capability). A third socket named "http"
// (deploy/ssekit-http.socket) is the plain-HTTP redirect.
func TestServeHTTP3UnderSocketActivation(t *testing.T) {
	var l *net.TCPListener
	var pc *net.UDPConn
	for attempt := 0; ; attempt++ { // a TCP port whose UDP twin is free
		var err error
		if l, err = net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: l.Addr().(*net.TCPAddr).Port}); err == nil {
			break
		}
		l.Close()
		if attempt == 10 {
			t.Fatal(err)
		}
	}
	defer l.Close()
	defer pc.Close()
	// The plain-HTTP socket of a second unit (FileDescriptorName=http).
	plainL, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer plainL.Close()
	var files []*os.File
	for _, fc := range []interface{ File() (*os.File, error) }{l, pc, plainL} {
		f, err := fc.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	tc := e2etest.NewTestCert(t)
	args := append([]string{"--data-dir", t.TempDir(), "--jwt-key", testSecret}, tc.Args()...)
	hub, notify := activatedWith(t, files, "ssekit:ssekit:http", args...)

	notify.SetReadDeadline(time.Now().Add(e2etest.Timeout))
	buf := make([]byte, 256)
	n, err := notify.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("systemd was told %q, %v; want READY=1\n%s", buf[:n], err, hub.Out.String())
	}
	// The test's copy of the UDP socket must not read the hub's packets.
	pc.Close()
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: tc.Pool}}
	defer tr.Close()
	resp, err := (&http.Client{Transport: tr, Timeout: e2etest.Timeout}).Get("https://" + l.Addr().String() + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz over HTTP/3 on the activated datagram socket: %v\n%s", err, hub.Out.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 3 {
		t.Fatalf("GET /readyz over HTTP/3: %s over %s; want 200 over HTTP/3", resp.Status, resp.Proto)
	}
	if out := hub.Out.String(); !strings.Contains(out, "systemd socket ssekit") {
		t.Errorf("the start-up log does not say HTTP/3 is on systemd's socket:\n%s", out)
	}
	// The "http" socket redirects to HTTPS.
	plain := &http.Client{Timeout: e2etest.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = plain.Get("http://" + plainL.Addr().String() + "/.well-known/mercure?topic=a")
	if err != nil {
		t.Fatalf("GET on the activated plain-HTTP socket: %v\n%s", err, hub.Out.String())
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	if want := "https://127.0.0.1:" + port + "/.well-known/mercure?topic=a"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("plain GET on the http socket: %s, Location %q; want 301 to %q", resp.Status, resp.Header.Get("Location"), want)
	}
	hub.Cmd.Process.Signal(os.Interrupt)
	if err := hub.Wait(e2etest.Timeout); err != nil {
		t.Fatalf("the hub did not exit cleanly: %v\n%s", err, hub.Out.String())
	}
}
