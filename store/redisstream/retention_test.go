package redisstream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/poll"
	"github.com/ssekit/sse/internal/redistest"
	"github.com/ssekit/sse/store/redisstream"
)

// With entries deleted by a rule among those MAXLEN trims, the id index
// keeps exactly the retained ids: each one is still a cursor, the trimmed
// ones are forgotten, and it does not grow.
func TestRetentionRuleKeepsIDIndex(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rc := client(t, srv)
	s := open(t, srv.URL(), redisstream.Config{Prefix: "rule", HistorySize: 100, Block: 50 * time.Millisecond})
	const kept = "https://example.com/kept"
	if err := s.SetRetention([]hub.RetentionRule{{Match: func(t string) bool { return t == kept }, MaxUpdates: 1}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 500 {
		for _, u := range []*hub.Update{
			{ID: fmt.Sprint("k", i), Topics: []string{kept}},
			{ID: fmt.Sprint("o", i), Topics: []string{"https://example.com/other"}},
		} {
			if err := s.Append(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	poll.Until(t, "one k left", waitTimeout, func() bool {
		got, _ = ids(t, s, "")
		n := 0
		for _, id := range got {
			if id[0] == 'k' {
				n++
			}
		}
		return n == 1
	})
	if last := got[len(got)-1]; last != "o499" {
		t.Fatalf("history ends %q; want o499", last)
	}
	for _, id := range got {
		if _, found := ids(t, s, id); !found {
			t.Fatalf("retained %q is not found as a cursor", id)
		}
	}
	poll.Until(t, "id index the size of the stream", waitTimeout, func() bool {
		// The next append trims idlog and the hash down to the stream.
		if err := s.Append(ctx, &hub.Update{ID: fmt.Sprint("o-more-", time.Now().UnixNano()), Topics: []string{"https://example.com/other"}}); err != nil {
			t.Fatal(err)
		}
		xlen := rc.XLen(ctx, "{rule}:stream").Val()
		hlen := rc.HLen(ctx, "{rule}:ids").Val()
		return hlen == xlen && rc.LLen(ctx, "{rule}:idlog").Val() <= xlen+1000
	})
}
