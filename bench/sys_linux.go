package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat: 100 on every Linux architecture Go supports.
const clockTicks = 100

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h): with it a
// socket bound to a source address gets its port at connect time, chosen
// per destination, so each source address offers the whole ephemeral range
// to each hub address.
const ipBindAddressNoPort = 24

// procStats reads a process's resident set size, its peak, and its user
// plus system CPU time.
func procStats(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("bench: server stats: %w", err)
	}
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			s.RSS = parseKB(v)
		} else if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			s.PeakRSS = parseKB(v)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("bench: server stats: %w", err)
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted after its last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, errors.New("bench: server stats: malformed /proc stat")
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 13 {
		return s, errors.New("bench: server stats: malformed /proc stat")
	}
	utime, err1 := strconv.ParseUint(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return s, errors.New("bench: server stats: malformed /proc stat")
	}
	s.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	return s, nil
}

func parseKB(v []byte) int64 {
	f := bytes.Fields(v)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return n << 10
}

// raiseFileLimit makes sure the process may hold the descriptors of
// subscribers connections and others more. Go already raised the soft
// limit to the hard one at start; a larger hard limit needs
// CAP_SYS_RESOURCE (root).
func raiseFileLimit(subscribers, others int) error {
	need := subscribers + others
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // cannot tell: let the dials fail if they must
	}
	if lim.Cur >= uint64(need) {
		return nil
	}
	want := syscall.Rlimit{Cur: uint64(need), Max: max(lim.Max, uint64(need))}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fmt.Errorf("%w: %d subscribers need about %d file descriptors; the limit is %d (raise it with ulimit -n, or run as root)",
			ErrInvalidConfig, subscribers, need, lim.Max)
	}
	return nil
}

// sourceControl returns the net.Dialer Control function for subscriber
// sockets bound to a source address: it sets IP_BIND_ADDRESS_NO_PORT.
func sourceControl() func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
		})
	}
}
