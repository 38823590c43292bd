package server_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/server"
)

// An application embeds the hub in its own http.ServeMux, beside its own
// routes, and publishes from its own code with hub.Publish; browsers
// subscribe at /.well-known/mercure as to any Mercure hub.
func ExampleNew() {
	h, err := hub.New(hub.Config{}) // the memory store; see store/bolt for a durable one
	if err != nil {
		log.Fatal(err)
	}
	hubServer, err := server.New(server.Config{Hub: h, AllowAnonymous: true})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/.well-known/mercure", hubServer)
	mux.Handle("/.well-known/mercure/", hubServer) // the subscriptions API
	mux.HandleFunc("POST /books/{id}/reviews", func(w http.ResponseWriter, r *http.Request) {
		// … store the review, then tell every page showing the book.
		_, err := h.Publish(r.Context(), &hub.Update{
			Topics: []string{"https://example.com/books/" + r.PathValue("id")},
			Data:   `{"reviews":1}`,
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	app := httptest.NewServer(mux)
	defer app.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		app.URL+"/.well-known/mercure?topic=https://example.com/books/{id}", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Header.Get("Content-Type"))

	review, err := http.Post(app.URL+"/books/7/reviews", "application/json", nil)
	if err != nil {
		log.Fatal(err)
	}
	review.Body.Close()

	ev, err := sse.NewDecoder(resp.Body).Next()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Data)

	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	hubServer.Shutdown(shutdownCtx)
	// Output:
	// text/event-stream
	// {"reviews":1}
}
