package server

import "testing"

// TestInHubNamespace checks the reserved-namespace rule on the spellings a
// publisher could use to reach the hub's path.
func TestInHubNamespace(t *testing.T) {
	tests := []struct {
		topic string
		want  bool
	}{
		{"/.well-known/mercure", true},
		{"/.well-known/mercure/subscriptions/a/b", true},
		{"https://any.host/.well-known/mercure/x", true},
		{"https://any.host/.well-known/%6Dercure/x", true},
		{"https://any.host/.well-known/%6dercure/x", true},
		{"/.well-known/mercure/../mercure/x", true},
		{"/x/../.well-known/./mercure", true},
		{"/.well-known/%2E/mercure/x", true},
		{"mercure/x", true}, // relative to /.well-known/
		{"./mercure", true},
		{"../.well-known/mercure", true},
		{"//host/.well-known/mercure/x", true},
		{`https:\\host\.well-known\mercure\x`, true},
		{"HTTPS://host/.well-known/mercure", true},
		{"ws://host/.well-known/mercure/x?y", true},
		{"https://host/.well-known/mercure/%zz", true},
		{"foo://host/.well-known/mercure/x", true},
		{"https://host/.well-known/mercure?x", true},
		{"https://host/.well-known/mercurex", false},
		{"https://host/.well-known/Mercure", false},
		{"https://host/.well-known/mercure%2Fx", false},
		{"https://host/x?/.well-known/mercure", false},
		{"https://host/x#/.well-known/mercure", false},
		{"urn:/.well-known/mercure", true},
		{"urn:x:/.well-known/mercure", false},
		{"https://example.com/books/1", false},
		{"/books/1", false},
		{"mercurex", false},
		{"a;b", false},
	}
	for _, tt := range tests {
		if got := inHubNamespace(tt.topic); got != tt.want {
			t.Errorf("inHubNamespace(%q) = %v; want %v", tt.topic, got, tt.want)
		}
	}
}
