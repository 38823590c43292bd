package expect_test

import (
	"testing"

	"github.com/ssekit/sse/expect"
)

// FuzzParseLine: no line makes the assertion parser panic.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"event delta json $.a[0] == 1 within 2s", "count >= 3", "ids ascending", "max-gap 1s", "lint cache-control", "event * data ~ ^x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		expect.ParseLine("f", line)
	})
}
