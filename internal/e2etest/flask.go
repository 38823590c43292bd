package e2etest

import (
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/ssekit/sse/internal/testenv"
)

// ArticleFlask is the path of the article's Flask server from the module's
// root; a test passes it relative to its own directory.
const ArticleFlask = "debugger/testdata/article_flask.py"

// StartArticleFlask runs the article's Flask server (script, the path of
// debugger/testdata/article_flask.py from the test's directory) on a free
// port, waits until it accepts connections, and returns its /events URL.
// It is stopped when the test ends, and its output logged if the test
// failed. It skips (fails under SSEKIT_REQUIRE_ALL=1) without python3 and
// Flask.
func StartArticleFlask(t *testing.T, script string) string {
	t.Helper()
	python := testenv.NeedCommand(t, "python3")
	if err := exec.Command(python, "-c", "import flask").Run(); err != nil {
		testenv.Skip(t, "Flask is not installed (Debian package python3-flask): %v", err)
	}
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	flask := StartProcess(t, "the Flask server", exec.Command(python, script, port))
	for deadline := time.Now().Add(Timeout); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Flask server did not start on %s: %v\n%s", addr, err, flask.Out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr + "/events"
}
