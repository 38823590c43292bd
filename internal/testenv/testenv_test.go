package testenv_test

import (
	"os/exec"
	"testing"

	"github.com/ssekit/sse/internal/testenv"
)

func TestNeedCommandFindsInstalledTool(t *testing.T) {
	want, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go binary in PATH")
	}
	if got := testenv.NeedCommand(t, "go"); got != want {
		t.Errorf("NeedCommand(go) = %q; want %q", got, want)
	}
}

func TestNeedCommandSkipsMissingTool(t *testing.T) {
	t.Setenv(testenv.RequireAllEnv, "")
	ok := t.Run("missing", func(t *testing.T) {
		testenv.NeedCommand(t, "ssekit-no-such-tool-anywhere")
		t.Error("NeedCommand returned for a missing tool; want a skip")
	})
	if !ok {
		t.Error("subtest failed; want it skipped")
	}
}
