package hostile_test

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// debugToken is the token the tests give "ssekit debug" in its
// environment: never on its command line.
const debugToken = "d3bug-0123456789abcdef0123456789ab"

// startDebug runs "ssekit debug" on a free loopback port with the token in
// SSEKIT_DEBUG_TOKEN and returns its base URL and process.
func startDebug(t *testing.T, args ...string) (string, *e2etest.Process) {
	t.Helper()
	addr := e2etest.FreeAddr(t)
	cmd := ssekit.Command([]string{"SSEKIT_DEBUG_TOKEN=" + debugToken}, append([]string{"debug", "--addr", addr}, args...)...)
	p := e2etest.StartProcess(t, "debug "+addr, cmd)
	p.Out.WaitFor(t, "open http://")
	return "http://" + addr, p
}

// debugCall makes one request to the debugger with the token, the Host
// and the extra headers given.
func debugCall(t *testing.T, method, url, host string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{"method":"GET","url":"http://127.0.0.1:1/"}`))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("X-Ssekit-Token", debugToken)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e2etest.NewClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestDebugDNSRebinding: a page whose name an attacker points at 127.0.0.1
// reaches the debugger with its own name in Host; the debugger answers it
// 403 (page and API, token or not), and loopback names and --allow-host
// names are served.
func TestDebugDNSRebinding(t *testing.T) {
	base, _ := startDebug(t, "--allow-host", "devbox.lan")
	port := base[strings.LastIndex(base, ":"):]
	for _, tt := range []struct {
		method, path, host string
		want               int
	}{
		{"GET", "/", "evil.example" + port, 403},
		{"GET", "/", "evil.example", 403},
		{"POST", "/api/sessions", "rebind.attacker.test" + port, 403},
		{"GET", "/", "127.0.0.1.evil.example" + port, 403},
		{"GET", "/", "localhost" + port, 200},
		{"GET", "/", "devbox.lan" + port, 200},
		{"POST", "/api/sessions", "localhost" + port, 200},
	} {
		if resp := debugCall(t, tt.method, base+tt.path, tt.host, nil); resp.StatusCode != tt.want {
			t.Errorf("%s %s with Host %q: %s; want %d", tt.method, tt.path, tt.host, resp.Status, tt.want)
		}
	}
}

// TestDebugCrossOrigin: another web page open in the user's browser posts
// to the debugger's API (a form or fetch names its origin); even with the
// token it is refused with 403, while the page's own calls are served.
func TestDebugCrossOrigin(t *testing.T) {
	base, _ := startDebug(t)
	for _, tt := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"fetch from another site", map[string]string{"Origin": "http://evil.example"}, 403},
		{"form from another port", map[string]string{"Origin": "http://127.0.0.1:1"}, 403},
		{"sandboxed frame", map[string]string{"Origin": "null"}, 403},
		{"fetch metadata says cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"the page itself", map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}, 200},
	} {
		if resp := debugCall(t, "POST", base+"/api/sessions", "", tt.header); resp.StatusCode != tt.want {
			t.Errorf("%s: %s; want %d", tt.name, resp.Status, tt.want)
		}
	}
}

// TestDebugFraming: no page can frame the debugger (clickjacking), on the
// page and on the API, refused answers included.
func TestDebugFraming(t *testing.T) {
	base, _ := startDebug(t)
	for _, path := range []string{"/", "/app.js", "/api/sessions/none/stream"} {
		for _, host := range []string{"", "evil.example"} {
			resp := debugCall(t, "GET", base+path, host, nil)
			if got := resp.Header.Get("Content-Security-Policy"); got != "frame-ancestors 'none'" {
				t.Errorf("GET %s (Host %q): Content-Security-Policy %q; want frame-ancestors 'none'", path, host, got)
			}
			if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
				t.Errorf("GET %s (Host %q): X-Frame-Options %q; want DENY", path, host, got)
			}
		}
	}
}

// TestDebugTokenNotInPS: the token is on no command line another local
// user can read: not ssekit's own (it came from the environment), and a
// token given as a flag is refused with the way to give it instead.
func TestDebugTokenNotInPS(t *testing.T) {
	_, p := startDebug(t)
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(p.Cmd.Process.Pid) + "/cmdline")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if strings.Contains(string(cmdline), debugToken) {
		t.Errorf("the command line %q holds the token", cmdline)
	}
	if !regexp.MustCompile(`open http://127\.0\.0\.1:\d+/\?token=` + debugToken).MatchString(p.Out.String()) {
		t.Errorf("the printed address does not carry the token from the environment:\n%s", p.Out.String())
	}
	_, stderr, code := ssekit.Run(t, nil, "", "debug", "--addr", "127.0.0.1:0", "--token", "on-the-command-line")
	if code != 2 || !strings.Contains(stderr, "SSEKIT_DEBUG_TOKEN") {
		t.Errorf("--token: exit %d, stderr %q; want 2 and the way to give a token", code, stderr)
	}
}
