package e2etest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// HubSpec says how to start an "ssekit serve" process.
type HubSpec struct {
	// Addr is HOST:PORT. "" picks a free port on 127.0.0.1 (Start picks
	// another if that one is taken in the meantime).
	Addr string
	// Args are the flags after "serve --addr …".
	Args []string
	// Env are NAME=value pairs added to a clean environment (CleanEnv).
	Env []string
	// Dir is the working directory; "" is the test's.
	Dir string
	// NoAddrFlag leaves --addr out: the address is then given as
	// SSEKIT_ADDR in the environment.
	NoAddrFlag bool
}

// Hub is one running "ssekit serve" process: its Cmd, its output in Out,
// Kill and Wait are those of the Process.
type Hub struct {
	*Process
	// Addr is HOST:PORT it listens on.
	Addr string
	// Scheme is http, or https when it was started with --tls-cert.
	Scheme string
	// Client is a plain HTTP/1.1 client with connections of its own, so
	// that no connection to another (or a killed) hub is reused.
	Client *http.Client
}

// NewClient returns a plain HTTP/1.1 client with connections of its own,
// closed when the test ends.
func NewClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// Start runs "ssekit serve" and waits until it listens. With spec.Addr
// empty it picks a free port, and another if that one was taken meanwhile;
// with a fixed address it retries while the port is still in use (a hub
// restarting on the port of one just killed). The process is killed when
// the test ends, if it still runs; its output is logged if the test failed.
func (b Binary) Start(t testing.TB, spec HubSpec) *Hub {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for attempt := 0; ; attempt++ {
		s := spec
		if s.Addr == "" {
			s.Addr = FreeAddr(t)
		}
		h := b.Launch(t, s)
		err := h.waitListening(deadline)
		if err == nil {
			return h
		}
		inUse := strings.Contains(h.Out.String(), "address already in use")
		if !inUse || time.Now().After(deadline) || attempt > 50 {
			t.Fatalf("ssekit serve on %s: %v\noutput:\n%s", s.Addr, err, tail(h.Out.String(), 200))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Launch runs "ssekit serve" without waiting for it to listen, for hubs
// that only become ready together (a cluster): call WaitListening after.
// spec.Addr "" picks a free port, without retrying.
func (b Binary) Launch(t testing.TB, spec HubSpec) *Hub {
	t.Helper()
	if spec.Addr == "" {
		spec.Addr = FreeAddr(t)
	}
	args := []string{"serve"}
	env := slices.Clone(spec.Env)
	if spec.NoAddrFlag {
		env = append(env, "SSEKIT_ADDR="+spec.Addr)
	} else {
		args = append(args, "--addr", spec.Addr)
	}
	args = append(args, spec.Args...)
	scheme := "http"
	if slices.Contains(spec.Args, "--tls-cert") {
		scheme = "https"
	}
	cmd := b.Command(env, args...)
	cmd.Dir = spec.Dir
	h := &Hub{Addr: spec.Addr, Scheme: scheme, Client: NewClient(t)}
	h.Process = StartProcess(t, "hub "+spec.Addr, cmd)
	return h
}

// WaitListening waits up to Timeout for the hub's "hub listening" log
// line, and fails the test if it exits or does not listen in time.
func (h *Hub) WaitListening(t *testing.T) {
	t.Helper()
	if err := h.waitListening(time.Now().Add(Timeout)); err != nil {
		t.Fatalf("hub %s: %v\noutput:\n%s", h.Addr, err, tail(h.Out.String(), 200))
	}
}

func (h *Hub) waitListening(deadline time.Time) error {
	for {
		if strings.Contains(h.Out.String(), "hub listening") {
			return nil
		}
		select {
		case <-h.done:
			return fmt.Errorf("exited before listening: %v", h.waitErr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("not listening in time")
		}
	}
}

// Base is the hub's base URL; URL its Mercure endpoint.
func (h *Hub) Base() string { return h.Scheme + "://" + h.Addr }

// URL is the hub's Mercure endpoint.
func (h *Hub) URL() string { return h.Base() + "/.well-known/mercure" }

// Status returns the status of GET path on the hub, 0 when it cannot be
// reached.
func (h *Hub) Status(path string) int {
	return Status(h.Client, h.Base()+path)
}

// Status returns the status of GET u with c, 0 when it cannot be reached.
func Status(c *http.Client, u string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// WaitStatus waits up to Timeout until GET path on the hub answers want.
func (h *Hub) WaitStatus(t *testing.T, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		got := h.Status(path)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s on %s: %d after %v; want %d", path, h.Addr, got, Timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
