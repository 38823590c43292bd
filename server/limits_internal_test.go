package server

import "testing"

func TestMaxSubscribersFor(t *testing.T) {
	tests := []struct {
		openFiles uint64
		want      int
	}{
		{0, fallbackMaxSubscribers}, // unknown or unlimited
		{100, 1},                    // below the reserve: one, then 503s
		{128, 1},
		{1024, 1024 - 128},
		{20000, 20000 - 2000},
		{1 << 20, 1<<20 - 1<<20/10},
	}
	for _, tt := range tests {
		if got := maxSubscribersFor(tt.openFiles); got != tt.want {
			t.Errorf("maxSubscribersFor(%d) = %d; want %d", tt.openFiles, got, tt.want)
		}
	}
	if got := DefaultMaxSubscribers(); got <= 0 {
		t.Errorf("DefaultMaxSubscribers() = %d; want a limit", got)
	}
}
