package poll

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fatalTB records a Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()                        {}
func (f *fatalTB) Fatalf(format string, _ ...any) { f.msg = format }

func TestUntil(t *testing.T) {
	var n atomic.Int32
	Until(t, "three checks", 5*time.Second, func() bool { return n.Add(1) == 3 })
	if n.Load() != 3 {
		t.Errorf("checked %d times; want 3", n.Load())
	}
	f := &fatalTB{TB: t}
	Until(f, "never", 30*time.Millisecond, func() bool { return false })
	if !strings.HasPrefix(f.msg, "timed out") {
		t.Errorf("a condition that never holds: Fatalf %q; want a timeout", f.msg)
	}
}
