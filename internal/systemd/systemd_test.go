package systemd

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// childEnv makes the test binary act as a socket-activated service: it
// takes its listener from Listeners and answers one connection with the
// listener's count, as a service under systemd would.
const childEnv = "SYSTEMD_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "1":
		os.Exit(child())
	case "named":
		os.Exit(namedChild())
	}
	os.Exit(m.Run())
}

func child() int {
	// systemd sets LISTEN_PID to the service's pid; exec.Cmd cannot know
	// it in advance, so the parent passes "self" and the child fills it in.
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	ls, err := Listeners()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if os.Getenv("LISTEN_FDS") != "" {
		fmt.Fprintln(os.Stderr, "LISTEN_FDS still set: a child of ours would take the sockets")
		return 1
	}
	if len(ls) != 1 {
		fmt.Fprintf(os.Stderr, "got %d listeners; want 1\n", len(ls))
		return 1
	}
	c, err := ls[0].Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(c, "served %d\n", len(ls))
	c.Close()
	return 0
}

// namedChild takes a stream and a datagram socket with their names, and
// answers one connection on each with what it found.
func namedChild() int {
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	socks, err := Sockets()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if len(socks) != 2 || socks[0].Listener == nil || socks[1].PacketConn == nil {
		fmt.Fprintf(os.Stderr, "got %+v; want a listener, then a datagram socket\n", socks)
		return 1
	}
	c, err := socks[0].Listener.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(c, "stream %s\n", socks[0].Name)
	c.Close()
	buf := make([]byte, 64)
	_, from, err := socks[1].PacketConn.ReadFrom(buf)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	socks[1].PacketConn.WriteTo([]byte("datagram "+socks[1].Name), from)
	return 0
}

// TestSocketsNamesStreamAndDatagram: a socket unit with ListenStream= and
// ListenDatagram= (HTTP/3 beside HTTPS) passes both, named by
// FileDescriptorName=; each comes out as its kind, with its name.
func TestSocketsNamesStreamAndDatagram(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	pf, err := pc.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=named", "LISTEN_FDS=2", "LISTEN_PID=self", "LISTEN_FDNAMES=web:h3")
	cmd.ExtraFiles = []*os.File{lf, pf} // fds 3 and 4
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	c, err := net.DialTimeout("tcp", l.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || line != "stream web\n" {
		t.Fatalf("the stream socket answered %q, %v; want \"stream web\"", line, err)
	}
	u, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64)
	// The child reads its datagram socket only after the stream one;
	// a datagram sent before then waits in the socket's buffer.
	u.Write([]byte("hello"))
	n, err := u.Read(buf)
	if err != nil || string(buf[:n]) != "datagram h3" {
		t.Fatalf("the datagram socket answered %q, %v; want \"datagram h3\"", buf[:n], err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

func TestListenersServesThePassedSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "LISTEN_FDS=1", "LISTEN_PID=self")
	cmd.ExtraFiles = []*os.File{f} // becomes fd 3
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	c, err := net.DialTimeout("tcp", l.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || line != "served 1\n" {
		t.Fatalf("the activated child answered %q, %v; want \"served 1\\n\"", line, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

func TestListenersIgnoresAnotherProcesssSockets(t *testing.T) {
	t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()+1))
	t.Setenv("LISTEN_FDS", "1")
	ls, err := Listeners()
	if err != nil || ls != nil {
		t.Fatalf("Listeners() = %v, %v; want nil, nil for another pid's sockets", ls, err)
	}
}

func TestListenersRefusesMalformedVariables(t *testing.T) {
	for _, fds := range []string{"x", "-1", "100000"} {
		t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
		t.Setenv("LISTEN_FDS", fds)
		if _, err := Listeners(); err == nil {
			t.Errorf("LISTEN_FDS=%q: got no error", fds)
		}
	}
	t.Setenv("LISTEN_PID", "pid")
	t.Setenv("LISTEN_FDS", "1")
	if _, err := Listeners(); err == nil {
		t.Error("LISTEN_PID=pid: got no error")
	}
}

func TestListenersWithoutActivation(t *testing.T) {
	t.Setenv("LISTEN_PID", "")
	t.Setenv("LISTEN_FDS", "")
	if ls, err := Listeners(); ls != nil || err != nil {
		t.Fatalf("Listeners() = %v, %v; want nil, nil", ls, err)
	}
}

func TestNotifySendsTheState(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "notify")
			env := name
			if abstract {
				name = "\x00ssekit-test-" + strconv.Itoa(os.Getpid())
				env = "@" + name[1:]
			}
			sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer sock.Close()
			t.Setenv("NOTIFY_SOCKET", env)
			if err := Notify("READY=1"); err != nil {
				t.Fatal(err)
			}
			sock.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64)
			n, err := sock.Read(buf)
			if err != nil || string(buf[:n]) != "READY=1" {
				t.Fatalf("the manager got %q, %v; want READY=1", buf[:n], err)
			}
		})
	}
}

func TestNotifyWithoutManager(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Fatalf("Notify without NOTIFY_SOCKET: %v; want nil", err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if err := Notify("READY=1"); err == nil {
		t.Fatal("Notify to an absent socket: got no error")
	}
}
