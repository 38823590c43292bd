package sse

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const ms = time.Millisecond
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	tests := []struct {
		name              string
		retry, maxDelay   time.Duration
		attempt           int
		wantLow, wantHigh time.Duration
	}{
		{"after a healthy connection: the reconnection time exactly", 3000 * ms, 30000 * ms, 0, 3000 * ms, 3000 * ms},
		{"first failure", 3000 * ms, 30000 * ms, 1, 3000 * ms, 6000 * ms},
		{"second failure", 3000 * ms, 30000 * ms, 2, 6000 * ms, 12000 * ms},
		{"third failure", 3000 * ms, 30000 * ms, 3, 12000 * ms, 24000 * ms},
		{"capped", 3000 * ms, 30000 * ms, 4, 15000 * ms, 30000 * ms},
		{"capped far out", 3000 * ms, 30000 * ms, 1000, 15000 * ms, 30000 * ms},
		{"retry 0 never waits", 0, 30000 * ms, 5, 0, 0},
		{"server asks more than the cap: honoured", 60000 * ms, 30000 * ms, 0, 60000 * ms, 60000 * ms},
		{"server asks more than the cap: exactly that", 60000 * ms, 30000 * ms, 3, 60000 * ms, 60000 * ms},
		{"jitter never goes below the server's retry", 20000 * ms, 30000 * ms, 1, 20000 * ms, 30000 * ms},
		{"huge retry does not overflow", 1 << 62, 30000 * ms, 70, 1 << 62, 1 << 62},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			low := backoff(tt.retry, tt.maxDelay, tt.attempt, lowest)
			high := backoff(tt.retry, tt.maxDelay, tt.attempt, highest)
			if low != tt.wantLow || high != tt.wantHigh {
				t.Errorf("backoff(%v, %v, %d): got [%v, %v]; want [%v, %v]",
					tt.retry, tt.maxDelay, tt.attempt, low, high, tt.wantLow, tt.wantHigh)
			}
		})
	}
}

func TestIsEventStream(t *testing.T) {
	tests := []struct {
		contentType string
		want        bool
	}{
		{"text/event-stream", true},
		{"text/event-stream; charset=utf-8", true},
		{"TEXT/EVENT-STREAM", true},
		{" text/event-stream ;", true},
		{"text/event-stream; charset", true}, // a malformed parameter is still ignored
		{"", false},
		{"text/plain", false},
		{"text/event-stream2", false},
		{"application/json; type=text/event-stream", false},
	}
	for _, tt := range tests {
		if got := isEventStream(tt.contentType); got != tt.want {
			t.Errorf("isEventStream(%q): got %v; want %v", tt.contentType, got, tt.want)
		}
	}
}
