package hub_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ssekit/sse/hub"
)

// A subscriber gets the wire bytes of the updates matching its selectors;
// the server writes what Drain returns to the client in one write.
func Example() {
	ctx := context.Background()
	h, err := hub.New(hub.Config{})
	if err != nil {
		panic(err)
	}
	defer h.Shutdown(ctx)

	wake := make(chan struct{}, 1)
	s, _, err := h.Subscribe(ctx, hub.SubscribeRequest{
		Selectors: []string{"https://example.com/books/{id}"},
		Notify: func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	h.Publish(ctx, &hub.Update{ID: "1", Topics: []string{"https://example.com/books/1"}, Data: `{"title":"Dune"}`})
	h.Publish(ctx, &hub.Update{ID: "2", Topics: []string{"https://example.com/users/1"}, Data: "not for s"})
	h.Publish(ctx, &hub.Update{ID: "3", Topics: []string{"https://example.com/books/2"}, Type: "deleted"})

	// A server drains whenever Notify fires; fan-out runs on its own
	// goroutine, so the updates may come in one Drain or several.
	var buf []byte
	for !bytes.Contains(buf, []byte("id:3\n")) {
		<-wake
		buf, _ = s.Drain(buf)
	}
	fmt.Print(string(buf))
	// Output:
	// id:1
	// data:{"title":"Dune"}
	//
	// id:3
	// event:deleted
	// data:
}
