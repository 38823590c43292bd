package proxies_test

import (
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// caddyConf is testdata/Caddyfile for a hub at hubAddr, served on addr
// over plain HTTP (no certificate to obtain in a test), the admin API off
// and its storage in dir, with the read timeout shortened.
func caddyConf(t *testing.T, hubAddr, addr, dir string) string {
	c := readConf(t, "Caddyfile")
	c = e2etest.ReplaceOnce(t, c, "hub.example.com {", "{\n\tadmin off\n\tstorage file_system "+dir+"\n}\nhttp://"+addr+" {")
	c = e2etest.ReplaceOnce(t, c, "reverse_proxy 127.0.0.1:8080 {", "reverse_proxy "+hubAddr+" {")
	return e2etest.ReplaceOnce(t, c, "read_timeout 5m", "read_timeout "+proxyIdle)
}

func startCaddy(t *testing.T, hubAddr string) *proxy {
	t.Helper()
	var dir string
	return startProxy(t, "caddy", func(addr string) string {
		dir = t.TempDir()
		return caddyConf(t, hubAddr, addr, dir)
	}, func(file, _ string) []string {
		return []string{"run", "--config", file, "--adapter", "caddyfile"}
	})
}

// TestBehindCaddy: the recipe of docs/deploying.md passes events one by
// one and keeps a heartbeating stream past its read timeout.
func TestBehindCaddy(t *testing.T) {
	h := startHub(t, heartbeat)
	checkThrough(t, startCaddy(t, h.Addr))
}

func TestCaddyCutsSilentStreams(t *testing.T) {
	h := startHub(t, "-1s")
	p := startCaddy(t, h.Addr)
	checkCutWithoutHeartbeats(t, p)
	checkLintNames(t, p, `"Behind Caddy"`)
}
