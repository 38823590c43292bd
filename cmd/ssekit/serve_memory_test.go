package main

import "testing"

func TestParseMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int64
		auto  bool
		bad   bool
	}{
		{in: "auto", auto: true},
		{in: "", auto: true},
		{in: "off", limit: -1},
		{in: "512MiB", limit: 512 << 20},
		{in: "2G", limit: 2 << 30},
		{in: "1000", limit: 1000},
		{in: "64 KiB", limit: 64 << 10},
		{in: "-5", bad: true},
		{in: "lots", bad: true},
		{in: "99999999999G", bad: true},
	} {
		limit, auto, err := parseMemoryLimit(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || limit != tc.limit || auto != tc.auto {
			t.Errorf("%q = %d, %v, %v; want %d, %v", tc.in, limit, auto, err, tc.limit, tc.auto)
		}
	}
}

func TestAutoMemoryLimit(t *testing.T) {
	// A budget under 90% of the machine is the limit; over it, 90% is.
	if got, want := autoMemoryLimit(16<<30, 10000), int64(memoryBase+10000*memoryPerSubscriber); got != want {
		t.Errorf("16 GiB, 10,000 subscribers: %d, want %d", got, want)
	}
	if got, want := autoMemoryLimit(1<<30, 1000000), int64(1<<30)/10*9; got != want {
		t.Errorf("1 GiB, a million subscribers: %d, want %d", got, want)
	}
	if got := autoMemoryLimit(0, -1); got != 0 {
		t.Errorf("nothing known: %d, want 0", got)
	}
	if got, want := autoMemoryLimit(8<<30, -1), int64(8<<30)/10*9; got != want {
		t.Errorf("no subscriber limit: %d, want %d", got, want)
	}
}

func TestShouldTrim(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name                        string
		spare, live, allocatedSince uint64
		want                        bool
	}{
		{"under the floor", 3 * mib, 4 * mib, 0, false},
		{"over a quarter of the live heap while busy", 30 * mib, 100 * mib, 50 * mib, true},
		{"under a quarter while busy", 20 * mib, 100 * mib, 50 * mib, false},
		{"under a quarter once quiet", 20 * mib, 100 * mib, 1 * mib, true},
		{"quiet with little spare", 2 * mib, 100 * mib, 0, false},
	} {
		if got := shouldTrim(c.spare, c.live, c.allocatedSince); got != c.want {
			t.Errorf("%s: shouldTrim(%d, %d, %d) = %v, want %v", c.name, c.spare, c.live, c.allocatedSince, got, c.want)
		}
	}
}
