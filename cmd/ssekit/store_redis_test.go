package main

import "testing"

func TestIsRedisURL(t *testing.T) {
	tests := []struct {
		store string
		want  bool
	}{
		{"redis://127.0.0.1:6379/0", true},
		{"rediss://redis.example.com:6380/0", true},
		{"redis+sentinel://127.0.0.1:26379/0?master_name=m", true},
		{"rediss+cluster://127.0.0.1:7000", true},
		{"bolt", false},
		{"memory", false},
		{"nats://127.0.0.1:4222", false},
		{"redisfoo://x", false},
		{"redis", false},
	}
	for _, tt := range tests {
		t.Run(tt.store, func(t *testing.T) {
			if got := isRedisURL(tt.store); got != tt.want {
				t.Errorf("isRedisURL(%q) = %v; want %v", tt.store, got, tt.want)
			}
		})
	}
}

func TestRedisStoreRefusesHistoryBytes(t *testing.T) {
	_, err := openRedisStore(&serveConfig{store: "redis://127.0.0.1:1/0", historyBytes: 1 << 20}, nil)
	if err == nil {
		t.Fatal("openRedisStore with --history-bytes: nil error; want a usage error")
	}
}
