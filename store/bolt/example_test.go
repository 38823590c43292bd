package bolt_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/store/bolt"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "ssekit-bolt-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := bolt.Open(filepath.Join(dir, "hub.db"), bolt.Config{
		HistorySize: 1000,           // keep the newest 1,000 updates
		MaxAge:      24 * time.Hour, // and none older than a day
		MaxBytes:    64 << 20,       // in about 64 MiB
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(context.Background())

	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		u := &hub.Update{ID: id, Topics: []string{"https://example.com/books/1"}, Data: "update " + id}
		if err := s.Append(ctx, u); err != nil { // returns once on disk
			log.Fatal(err)
		}
	}
	// A subscriber that reconnects with Last-Event-ID "a" gets what follows.
	// After returns it a page at a time; this one holds the rest.
	page, err := s.After(ctx, hub.Cursor{ID: "a"}, hub.DefaultPageBytes)
	for _, u := range page.Updates {
		fmt.Println(u.Seq, u.ID, u.Data)
	}
	fmt.Println("found:", page.Found, "end:", page.End, err)
	// Output:
	// 2 b update b
	// 3 c update c
	// found: true end: true <nil>
}
