package hub_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/hub/hubtest"
)

func TestMemoryStoreConformance(t *testing.T) {
	hubtest.RunStoreTests(t, func(t *testing.T) hub.Store {
		return hub.NewMemoryStore(hub.MemoryStoreConfig{})
	})
}

func BenchmarkMemoryStore(b *testing.B) {
	hubtest.BenchmarkStore(b, func(b *testing.B) hub.Store {
		return hub.NewMemoryStore(hub.MemoryStoreConfig{})
	})
}

func appendIDs(t *testing.T, s hub.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := s.Append(context.Background(), &hub.Update{ID: id, Topics: []string{"t"}, Data: "d"}); err != nil {
			t.Fatalf("Append(%q): %v", id, err)
		}
	}
}

func retained(t *testing.T, s hub.Store, after string) ([]string, bool) {
	t.Helper()
	var ids []string
	_, found, err := hubtest.AfterAll(context.Background(), s, after, 0, func(u *hub.Update) bool {
		ids = append(ids, u.ID)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, found
}

func seqIDs(prefix string, from, to int) []string {
	var ids []string
	for i := from; i < to; i++ {
		ids = append(ids, fmt.Sprintf("%s%d", prefix, i))
	}
	return ids
}

func TestMemoryStoreRetention(t *testing.T) {
	t.Run("MaxUpdates", func(t *testing.T) {
		s := hub.NewMemoryStore(hub.MemoryStoreConfig{MaxUpdates: 100})
		defer s.Close(context.Background())
		appendIDs(t, s, seqIDs("u", 0, 250)...)
		ids, _ := retained(t, s, "")
		if want := seqIDs("u", 150, 250); !slices.Equal(ids, want) {
			t.Errorf("retained %d updates %v…; want the newest 100", len(ids), ids[:min(3, len(ids))])
		}
		if got, found := retained(t, s, "u149"); found || len(got) != 100 {
			t.Errorf("After(evicted id): %d updates, found %v; want 100, false", len(got), found)
		}
		if got, found := retained(t, s, "u150"); !found || !slices.Equal(got, seqIDs("u", 151, 250)) {
			t.Errorf("After(oldest retained): %d updates, found %v; want 99, true", len(got), found)
		}
		// An evicted id may be appended again.
		appendIDs(t, s, "u0")
	})
	t.Run("MaxBytes", func(t *testing.T) {
		// Each update is about 10 KiB; 100 KiB keeps fewer than 10.
		s := hub.NewMemoryStore(hub.MemoryStoreConfig{MaxBytes: 100 << 10})
		defer s.Close(context.Background())
		data := strings.Repeat("x", 10<<10)
		for i := range 30 {
			if err := s.Append(context.Background(), &hub.Update{ID: fmt.Sprint(i), Topics: []string{"t"}, Data: data}); err != nil {
				t.Fatal(err)
			}
		}
		ids, _ := retained(t, s, "")
		if len(ids) < 8 || len(ids) > 9 || ids[len(ids)-1] != "29" {
			t.Errorf("retained %v; want the newest 8 or 9", ids)
		}
	})
	t.Run("NewestAlwaysKept", func(t *testing.T) {
		s := hub.NewMemoryStore(hub.MemoryStoreConfig{MaxBytes: 1})
		defer s.Close(context.Background())
		appendIDs(t, s, "a", "b")
		if ids, _ := retained(t, s, ""); !slices.Equal(ids, []string{"b"}) {
			t.Errorf("retained %v; want [b]", ids)
		}
	})
	t.Run("MaxAge", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := hub.NewMemoryStore(hub.MemoryStoreConfig{MaxAge: time.Minute})
			defer s.Close(context.Background())
			appendIDs(t, s, "old1", "old2")
			time.Sleep(45 * time.Second)
			appendIDs(t, s, "mid")
			time.Sleep(30 * time.Second) // old* are 75s old, mid 30s
			if ids, _ := retained(t, s, ""); !slices.Equal(ids, []string{"mid"}) {
				t.Errorf("After(\"\"): %v; want [mid]", ids)
			}
			if ids, found := retained(t, s, "old1"); found || !slices.Equal(ids, []string{"mid"}) {
				t.Errorf("After(expired id): %v, found %v; want [mid], false", ids, found)
			}
			appendIDs(t, s, "new") // evicts old*
			if n := s.Len(); n != 2 {
				t.Errorf("Len after an append: %d; want 2 (expired updates dropped)", n)
			}
			time.Sleep(2 * time.Minute)
			if ids, _ := retained(t, s, ""); len(ids) != 0 {
				t.Errorf("After(\"\") once all expired: %v; want nothing", ids)
			}
		})
	})
}

// BenchmarkMemoryStoreAfterLast shows After(id) finds id without scanning
// the history: the cost is the same for 1,000 and 100,000 retained.
func BenchmarkMemoryStoreAfterLast(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := hub.NewMemoryStore(hub.MemoryStoreConfig{MaxUpdates: n})
			defer s.Close(context.Background())
			for i := range n {
				if err := s.Append(context.Background(), &hub.Update{ID: fmt.Sprint(i), Topics: []string{"t"}}); err != nil {
					b.Fatal(err)
				}
			}
			last := fmt.Sprint(n - 2)
			b.ReportAllocs()
			for b.Loop() {
				calls := 0
				if _, _, err := hubtest.AfterAll(context.Background(), s, last, 0, func(*hub.Update) bool { calls++; return true }); err != nil || calls != 1 {
					b.Fatalf("After: %d calls, %v", calls, err)
				}
			}
		})
	}
}

func TestMemoryStorePolicyRetention(t *testing.T) {
	hubtest.RunRetentionTests(t, func(t *testing.T) hub.Store {
		return hub.NewMemoryStore(hub.MemoryStoreConfig{})
	})
}

// BenchmarkMemoryStoreAppendRetention: an append with per-topic retention
// rules (keep 1 of each of 1,000 topics, and an age rule on others) next
// to one without: the index's cost per append.
func BenchmarkMemoryStoreAppendRetention(b *testing.B) {
	for _, rules := range []bool{false, true} {
		name := "none"
		if rules {
			name = "keep1+age"
		}
		b.Run(name, func(b *testing.B) {
			s := hub.NewMemoryStore(hub.MemoryStoreConfig{})
			if rules {
				err := s.SetRetention([]hub.RetentionRule{
					{Match: func(t string) bool { return strings.HasPrefix(t, "https://example.com/k/") }, MaxUpdates: 1},
					{Match: func(string) bool { return true }, MaxAge: time.Hour},
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			topics := make([]string, 1000)
			for i := range topics {
				topics[i] = fmt.Sprintf("https://example.com/%c/%d", "ko"[i%2], i)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := s.Append(ctx, &hub.Update{ID: strconv.Itoa(i), Topics: []string{topics[i%len(topics)]}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
