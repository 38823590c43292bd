package proxies_test

import (
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// haproxyConf is testdata/haproxy.cfg for a hub at hubAddr, bound on
// addr, with the client and server timeouts shortened.
func haproxyConf(t *testing.T, hubAddr, addr string) string {
	c := readConf(t, "haproxy.cfg")
	c = e2etest.ReplaceOnce(t, c, "bind :80", "bind "+addr)
	c = e2etest.ReplaceOnce(t, c, "server hub1 127.0.0.1:8080 check", "server hub1 "+hubAddr+" check inter 500ms")
	c = e2etest.ReplaceOnce(t, c, "timeout client 60s", "timeout client "+proxyIdle)
	return e2etest.ReplaceOnce(t, c, "timeout server 60s", "timeout server "+proxyIdle)
}

func startHAProxy(t *testing.T, hubAddr string) *proxy {
	t.Helper()
	return startProxy(t, "haproxy", func(addr string) string {
		return haproxyConf(t, hubAddr, addr)
	}, func(file, _ string) []string {
		return []string{"-db", "-f", file}
	})
}

// TestBehindHAProxy: the recipe of docs/deploying.md passes events one by
// one and keeps a heartbeating stream past its client and server timeouts.
func TestBehindHAProxy(t *testing.T) {
	h := startHub(t, heartbeat)
	checkThrough(t, startHAProxy(t, h.Addr))
}

func TestHAProxyCutsSilentStreams(t *testing.T) {
	h := startHub(t, "-1s")
	p := startHAProxy(t, h.Addr)
	checkCutWithoutHeartbeats(t, p)
	checkLintNames(t, p, `"Behind HAProxy"`)
}
