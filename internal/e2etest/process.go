package e2etest

import (
	"os/exec"
	"testing"
	"time"
)

// Process is a process a test started, with its stdout and stderr
// collected in Out.
type Process struct {
	// Name says which process it is in messages: "hub 127.0.0.1:8080".
	Name string
	Cmd  *exec.Cmd
	// Out is its stdout and stderr.
	Out *LockedBuffer

	t       testing.TB
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// StartProcess starts cmd with its output going to Out. It is killed when
// the test ends, if it still runs, and the end of its output logged if the
// test failed. A cmd that leads a process group of its own
// (SysProcAttr.Setpgid) is killed with its whole group, children
// included. cmd.WaitDelay, when zero, becomes 5 seconds, so that a child
// that outlives the process and keeps its output open cannot hold Wait
// forever.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: name, Cmd: cmd, Out: &LockedBuffer{}, t: t, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s (pid %d) output:\n%s", name, cmd.Process.Pid, tail(p.Out.String(), 200))
		}
	})
	return p
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns what exec.Cmd.Wait said once the process has ended, and nil
// while it runs.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.waitErr
}

// Kill sends SIGKILL, as kill -9 does (to its process group, when it
// leads one), and waits for the process to go.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	if !killGroup(p.Cmd) {
		_ = p.Cmd.Process.Kill()
	}
	<-p.done
}

// Wait waits for the process to exit and returns what exec.Cmd.Wait said;
// it fails the test if the process still runs after timeout.
func (p *Process) Wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %s", p.Name, timeout)
		return nil
	}
}
