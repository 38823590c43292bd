package bolt

import (
	"testing"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/hub/hubtest"
)

func TestStoreConformance(t *testing.T) {
	hubtest.RunStoreTests(t, func(t *testing.T) hub.Store {
		s, err := Open(tempPath(t), Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func BenchmarkStore(b *testing.B) {
	hubtest.BenchmarkStore(b, func(b *testing.B) hub.Store {
		s, err := Open(tempPath(b), Config{HistorySize: -1})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

func TestStoreRetentionConformance(t *testing.T) {
	hubtest.RunRetentionTests(t, func(t *testing.T) hub.Store {
		s, err := Open(tempPath(t), Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
