package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/hub/hubtest"
	"github.com/ssekit/sse/internal/redistest"
	"github.com/ssekit/sse/store/redisstream"
)

// waitTimeout bounds every wait for asynchronous delivery; nothing is
// asserted about speed.
const waitTimeout = 20 * time.Second

func open(t *testing.T, url string, cfg redisstream.Config) *redisstream.Store {
	t.Helper()
	s, err := redisstream.Open(context.Background(), url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func client(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func ids(t *testing.T, s hub.Store, after string) (got []string, found bool) {
	t.Helper()
	_, found, err := hubtest.AfterAll(context.Background(), s, after, 0, func(u *hub.Update) bool {
		got = append(got, u.ID)
		return true
	})
	if err != nil {
		t.Fatalf("After(%q): %v", after, err)
	}
	return got, found
}

// collector records what a Subscribe callback receives and wakes waiters.
type collector struct {
	mu   sync.Mutex
	got  []*hub.Update
	wake chan struct{}
}

func subscribe(t *testing.T, s hub.Store) *collector {
	t.Helper()
	c := &collector{wake: make(chan struct{}, 1)}
	stop, err := s.Subscribe(context.Background(), func(u *hub.Update) {
		c.mu.Lock()
		cp := *u
		c.got = append(c.got, &cp)
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return c
}

// waitFor waits until the collector holds n updates and returns their ids.
func (c *collector) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		c.mu.Lock()
		got := make([]string, len(c.got))
		for i, u := range c.got {
			got[i] = u.ID
		}
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.wake:
		case <-deadline:
			t.Fatalf("timed out after %v with %d of %d updates: %v", waitTimeout, len(got), n, got)
		}
	}
}

// TestRetentionByCount checks that the stream keeps HistorySize updates
// and up to one stream node more, that the id index follows it exactly,
// and that a trimmed id is no longer found and may be published again.
func TestRetentionByCount(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rc := client(t, srv)
	s := open(t, srv.URL(), redisstream.Config{Prefix: "count", HistorySize: 100})
	hubtest.AppendN(t, s, "u", 1000)
	ctx := context.Background()
	xlen := rc.XLen(ctx, "{count}:stream").Val()
	if xlen < 100 || xlen > 250 {
		t.Errorf("XLEN after 1000 appends with HistorySize 100: %d; want 100 to about 200", xlen)
	}
	if hlen, llen := rc.HLen(ctx, "{count}:ids").Val(), rc.LLen(ctx, "{count}:idlog").Val(); hlen != xlen || llen != xlen {
		t.Errorf("id index: HLEN %d, LLEN %d; want both XLEN %d", hlen, llen, xlen)
	}
	got, _ := ids(t, s, "")
	if int64(len(got)) != xlen || got[len(got)-1] != "u-999" {
		t.Fatalf("After(\"\"): %d updates ending %q; want %d ending u-999", len(got), got[len(got)-1], xlen)
	}
	oldest := got[0]
	// The update just before the oldest retained one is gone.
	var n int
	fmt.Sscanf(oldest, "u-%d", &n)
	trimmed := fmt.Sprintf("u-%d", n-1)
	if _, found := ids(t, s, trimmed); found {
		t.Errorf("After(%q), a trimmed id: found true; want false", trimmed)
	}
	if err := s.Append(ctx, hubtest.NewUpdate(trimmed)); err != nil {
		t.Errorf("Append of trimmed id %q: %v; want it accepted", trimmed, err)
	}
	if err := s.Append(ctx, hubtest.NewUpdate(oldest)); !errors.Is(err, hub.ErrDuplicateID) {
		t.Errorf("Append of retained id %q: %v; want ErrDuplicateID", oldest, err)
	}
}

// TestRetentionByAge checks that expired updates are no longer replayed.
func TestRetentionByAge(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := open(t, srv.URL(), redisstream.Config{Prefix: "age", MaxAge: 200 * time.Millisecond})
	hubtest.AppendN(t, s, "old", 3)
	deadline := time.Now().Add(waitTimeout)
	for {
		got, _ := ids(t, s, "")
		if len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("After(\"\") still returns %v after %v with MaxAge 200ms", got, waitTimeout)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the clock itself
	}
	if _, found := ids(t, s, "old-2"); found {
		t.Errorf("After(expired id): found true; want false")
	}
	hubtest.AppendN(t, s, "new", 2)
	if got, _ := ids(t, s, ""); !slices.Equal(got, []string{"new-0", "new-1"}) {
		t.Errorf("After(\"\"): got %v; want [new-0 new-1]", got)
	}
}

// TestNodesShareTheStream runs two stores on one prefix, as two hub nodes:
// an update appended on either is delivered to both, in one order, and
// either finds the other's ids.
func TestNodesShareTheStream(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := open(t, srv.URL(), redisstream.Config{Prefix: "shared"})
	b := open(t, srv.URL(), redisstream.Config{Prefix: "shared"})
	ca, cb := subscribe(t, a), subscribe(t, b)
	var want []string
	for i := range 50 {
		s := a
		if i%2 == 1 {
			s = b
		}
		id := fmt.Sprintf("n-%d", i)
		if err := s.Append(context.Background(), hubtest.NewUpdate(id)); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	for name, c := range map[string]*collector{"a": ca, "b": cb} {
		if got := c.waitFor(t, 50); !slices.Equal(got, want) {
			t.Errorf("node %s received %v; want %v", name, got, want)
		}
	}
	if got, found := ids(t, b, "n-24"); !found || !slices.Equal(got, want[25:]) {
		t.Errorf("node b After(n-24, appended on a): got %v, found %v; want %v, true", got, found, want[25:])
	}
	if err := b.Append(context.Background(), hubtest.NewUpdate("n-0")); !errors.Is(err, hub.ErrDuplicateID) {
		t.Errorf("node b Append of node a's id: %v; want ErrDuplicateID", err)
	}
}

// TestRedisRestart stops redis-server under a store, checks that it
// reports the outage, restarts it, and checks that the store recovers by
// itself: the subscriber gets every update appended before and after the
// outage once, in order.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	s := open(t, srv.URL(), redisstream.Config{Prefix: "restart", Block: 200 * time.Millisecond})
	c := subscribe(t, s)
	before := hubtest.AppendN(t, s, "before", 20)
	c.waitFor(t, 20)

	srv.Stop()
	ctx := context.Background()
	if err := s.Append(ctx, hubtest.NewUpdate("during")); !errors.Is(err, hub.ErrStoreUnavailable) {
		t.Errorf("Append with Redis down: %v; want ErrStoreUnavailable", err)
	}
	if _, _, err := hubtest.AfterAll(ctx, s, "", 0, func(*hub.Update) bool { return true }); !errors.Is(err, hub.ErrStoreUnavailable) {
		t.Errorf("After with Redis down: %v; want ErrStoreUnavailable", err)
	}
	if err := s.Healthy(ctx); !errors.Is(err, hub.ErrStoreUnavailable) {
		t.Errorf("Healthy with Redis down: %v; want ErrStoreUnavailable", err)
	}

	srv.Relaunch()
	// The client reconnects by itself; wait for the first Append to pass.
	deadline := time.Now().Add(waitTimeout)
	for s.Healthy(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store not healthy %v after Redis came back", waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := hubtest.AppendN(t, s, "after", 20)
	want := append(idsOf(before), idsOf(after)...)
	if got := c.waitFor(t, 40); !slices.Equal(got, want) {
		t.Errorf("subscriber across the restart got %v; want %v", got, want)
	}
	// The history survived (appendonly) and Seq kept increasing.
	if got, _ := ids(t, s, ""); !slices.Equal(got, want) {
		t.Errorf("history after the restart: %v; want %v", got, want)
	}
	if after[0].Seq <= before[len(before)-1].Seq {
		t.Errorf("Seq after the restart %d; want above %d", after[0].Seq, before[len(before)-1].Seq)
	}
}

func idsOf(us []*hub.Update) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

// TestEntryIDCarry checks the append script's id choice when the last
// entry id is ahead of the server's clock and at the end of its
// millisecond: the next id carries into the next millisecond, so Seq
// stays strictly increasing.
func TestEntryIDCarry(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rc := client(t, srv)
	s := open(t, srv.URL(), redisstream.Config{Prefix: "carry"})
	ahead := time.Now().Add(time.Hour).UnixMilli()
	if err := rc.Set(context.Background(), "{carry}:last", fmt.Sprintf("%d-4194303", ahead), 0).Err(); err != nil {
		t.Fatal(err)
	}
	us := hubtest.AppendN(t, s, "c", 2)
	for i, want := range []string{fmt.Sprintf("%d-0", ahead+1), fmt.Sprintf("%d-1", ahead+1)} {
		if got := rc.HGet(context.Background(), "{carry}:ids", us[i].ID).Val(); got != want {
			t.Errorf("entry id of %s: %q; want %q", us[i].ID, got, want)
		}
	}
	if us[1].Seq != us[0].Seq+1 || !us[0].Time.Equal(time.UnixMilli(ahead+1)) {
		t.Errorf("Seq %d, %d, Time %v; want consecutive, at %v", us[0].Seq, us[1].Seq, us[0].Time, time.UnixMilli(ahead+1))
	}
}

// TestForeignEntrySkipped checks that an entry not written by the store
// is skipped (and logged) by delivery and replay, not fatal.
func TestForeignEntrySkipped(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rc := client(t, srv)
	s := open(t, srv.URL(), redisstream.Config{Prefix: "foreign"})
	c := subscribe(t, s)
	hubtest.AppendN(t, s, "a", 1)
	if err := rc.XAdd(context.Background(), &redis.XAddArgs{Stream: "{foreign}:stream", Values: []string{"hello", "world"}}).Err(); err != nil {
		t.Fatal(err)
	}
	rc.Del(context.Background(), "{foreign}:last") // as if written by someone else
	hubtest.AppendN(t, s, "b", 1)
	if got := c.waitFor(t, 2); !slices.Equal(got, []string{"a-0", "b-0"}) {
		t.Errorf("delivered %v; want [a-0 b-0]", got)
	}
	if got, _ := ids(t, s, ""); !slices.Equal(got, []string{"a-0", "b-0"}) {
		t.Errorf("replayed %v; want [a-0 b-0]", got)
	}
}

func TestOpenUnreachable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	url := srv.URL()
	srv.Kill()
	_, err := redisstream.Open(context.Background(), url, redisstream.Config{})
	if !errors.Is(err, hub.ErrStoreUnavailable) {
		t.Errorf("Open with Redis down: %v; want ErrStoreUnavailable", err)
	}
}

func TestNewClientURLs(t *testing.T) {
	tests := []struct {
		url, prefix, err string
	}{
		{url: "redis://127.0.0.1:6379/0"},
		{url: "redis://user:pw@127.0.0.1:6379/2?prefix=hub1&dial_timeout=1s", prefix: "hub1"},
		{url: "rediss://redis.example.com:6380/0"},
		{url: "redis+sentinel://127.0.0.1:26379/0?master_name=mymaster&addr=127.0.0.1:26380"},
		{url: "redis+cluster://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002&prefix=c", prefix: "c"},
		{url: "redis+sentinel://127.0.0.1:26379/0", err: "master_name"},
		{url: "http://127.0.0.1:6379", err: "scheme"},
		{url: "redis+ring://127.0.0.1:6379", err: "scheme"},
		{url: "redis://127.0.0.1:6379/0?no_such_option=1", err: "no_such_option"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, prefix, err := redisstream.NewClient(tt.url)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("NewClient: got %v; want an error about %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			c.Close()
			if prefix != tt.prefix {
				t.Errorf("prefix %q; want %q", prefix, tt.prefix)
			}
		})
	}
}
