// Package systemd speaks the two small protocols a service needs under
// systemd: socket activation (sd_listen_fds: the listening sockets are
// passed in as file descriptors 3, 4, … with LISTEN_FDS and LISTEN_PID set,
// and their names in LISTEN_FDNAMES)
// and readiness notification (sd_notify: datagrams such as "READY=1" sent
// to the socket named by NOTIFY_SOCKET). Both are a few lines over the
// standard library, so no dependency is taken for them.
package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// listenFDsStart is the first file descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// maxListenFDs bounds what a malformed LISTEN_FDS may make us open.
const maxListenFDs = 64

// Errors of this package.
var (
	// ErrBadListenFDs is returned when LISTEN_FDS or LISTEN_PID cannot be parsed.
	ErrBadListenFDs = errors.New("systemd: bad LISTEN_FDS or LISTEN_PID")
)

// Socket is one socket systemd passed: a listening stream socket
// (ListenStream=) or a datagram socket (ListenDatagram=), with the name
// the socket unit gave it (FileDescriptorName=, by default the unit's
// name).
type Socket struct {
	Name string
	// Listener is set for a stream socket, PacketConn for a datagram one.
	Listener   net.Listener
	PacketConn net.PacketConn
}

// Close closes the socket.
func (s Socket) Close() error {
	if s.Listener != nil {
		return s.Listener.Close()
	}
	return s.PacketConn.Close()
}

// Sockets returns the sockets systemd passed to this process, in order,
// or nil when the process was not socket-activated (LISTEN_PID names
// another process or is unset). It unsets the variables, as
// sd_listen_fds(1) does, so that child processes do not take the sockets
// for theirs.
func Sockets() ([]Socket, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	if pid == "" || fds == "" {
		return nil, nil
	}
	names := os.Getenv("LISTEN_FDNAMES")
	defer func() {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}()
	p, err := strconv.Atoi(pid)
	if err != nil {
		return nil, fmt.Errorf("%w: LISTEN_PID=%q", ErrBadListenFDs, pid)
	}
	if p != os.Getpid() {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > maxListenFDs {
		return nil, fmt.Errorf("%w: LISTEN_FDS=%q", ErrBadListenFDs, fds)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
	}
	socks := make([]Socket, 0, n)
	for i := range n {
		fd := listenFDsStart + i
		sock := Socket{Name: "unknown"} // as sd_listen_fds_with_names without names
		if i < len(nameList) {
			sock.Name = nameList[i]
		}
		f := os.NewFile(uintptr(fd), "systemd-listen-fd-"+strconv.Itoa(fd))
		// Both dup the descriptor (close-on-exec); the inherited one goes.
		l, err := net.FileListener(f)
		if err == nil {
			sock.Listener = l
		} else if pc, perr := net.FilePacketConn(f); perr == nil {
			sock.PacketConn = pc
			err = nil
		}
		f.Close()
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
			return nil, fmt.Errorf("systemd: file descriptor %d (%s) is neither a listening nor a datagram socket: %w", fd, sock.Name, err)
		}
		socks = append(socks, sock)
	}
	return socks, nil
}

// Listeners returns the stream sockets systemd passed, as Sockets does;
// it refuses a datagram socket.
func Listeners() ([]net.Listener, error) {
	socks, err := Sockets()
	if err != nil || socks == nil {
		return nil, err
	}
	ls := make([]net.Listener, 0, len(socks))
	for _, s := range socks {
		if s.Listener == nil {
			for _, s := range socks {
				s.Close()
			}
			return nil, fmt.Errorf("systemd: socket %q is a datagram socket, where a listening one is wanted", s.Name)
		}
		ls = append(ls, s.Listener)
	}
	return ls, nil
}

// Notify sends state (for example "READY=1", "STOPPING=1" or
// "STATUS=serving") to the service manager. It does nothing and returns
// nil when NOTIFY_SOCKET is unset, so it can be called unconditionally.
func Notify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if strings.HasPrefix(name, "@") { // an abstract socket
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("systemd: notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("systemd: notify: %w", err)
	}
	return nil
}
