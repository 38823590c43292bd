package publisher_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/publisher"
	"github.com/ssekit/sse/server"
)

// A price feed publishes from many goroutines; the publisher sends their
// updates to the hub in batches, and each Publish returns its update's id
// once the hub has stored it.
func Example() {
	key, _ := jwtauth.NewKey("HS256", []byte(strings.Repeat("k", 32)))
	auth, _ := jwtauth.New(jwtauth.Config{PublisherKey: key})
	h, _ := hub.New(hub.Config{})
	srv, _ := server.New(server.Config{Hub: h, Auth: auth})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	token, _ := jwtauth.Sign(key, hub.Claims{Publish: []string{"https://example.com/prices/{symbol}"}})

	p, err := publisher.New(publisher.Config{HubURL: hs.URL + "/.well-known/mercure", Token: token, MaxBatch: 100})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	var wg sync.WaitGroup
	for _, symbol := range []string{"ACME", "GLOBEX", "INITECH"} {
		wg.Go(func() {
			id, err := p.Publish(context.Background(), publisher.Update{
				Topics: []string{"https://example.com/prices/" + symbol},
				ID:     "price-" + symbol,
				Data:   `{"price":42}`,
			})
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println("stored", id)
		})
		wg.Wait() // in order, for the output below; a feed would not wait
	}
	// Output:
	// stored price-ACME
	// stored price-GLOBEX
	// stored price-INITECH
}
