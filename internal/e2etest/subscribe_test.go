package e2etest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ssekit/sse/internal/e2etest"
)

// recordTB keeps what CheckExactly reports instead of failing the test.
type recordTB struct {
	testing.TB
	errs []string
}

func (r *recordTB) Helper() {}

func (r *recordTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckExactly(t *testing.T) {
	want := []string{"a", "b", "c"}
	tests := []struct {
		name    string
		got     []string
		ok      bool
		mention string // in the report
	}{
		{"exact", []string{"a", "b", "c"}, true, ""},
		{"lost", []string{"a", "c"}, false, `lost 1 ["b"]`},
		{"duplicated", []string{"a", "b", "b", "c"}, false, `duplicated 1 ["b"]`},
		{"never published", []string{"a", "b", "c", "x"}, false, `never published 1 ["x"]`},
		{"out of order", []string{"a", "c", "b"}, false, "order differs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recordTB{TB: t}
			if got := e2etest.CheckExactly(r, "sub", tt.got, want); got != tt.ok {
				t.Errorf("CheckExactly(%q) = %v; want %v", tt.got, got, tt.ok)
			}
			if tt.ok != (len(r.errs) == 0) {
				t.Fatalf("reports %q; want %d", r.errs, map[bool]int{true: 0, false: 1}[tt.ok])
			}
			if !tt.ok && !strings.Contains(r.errs[0], tt.mention) {
				t.Errorf("report %q; want it to mention %q", r.errs[0], tt.mention)
			}
		})
	}
}

func TestFreeAddrsDiffer(t *testing.T) {
	addrs := e2etest.FreeAddrs(t, 5)
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] || !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("FreeAddrs: got %q; want distinct 127.0.0.1 addresses", addrs)
		}
		seen[a] = true
	}
}
