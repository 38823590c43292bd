//go:build !linux

package bench

import (
	"errors"
	"syscall"
)

func procStats(pid int) (procSample, error) {
	return procSample{}, errors.New("bench: server stats need Linux's /proc")
}

func raiseFileLimit(subscribers, others int) error { return nil }

func sourceControl() func(network, address string, c syscall.RawConn) error { return nil }
