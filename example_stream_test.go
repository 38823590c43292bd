package sse_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/ssekit/sse"
)

// A handler that streams three events with ids, resuming after the
// client's Last-Event-ID. NewStream sends the headers at once
// (text/event-stream, no caching, no proxy buffering); every Send is one
// write and one flush; heartbeats keep an idle stream open. Fields are
// written without the optional space after the colon.
func ExampleNewStream() {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer s.Close()
		next, _ := strconv.Atoi(r.Header.Get("Last-Event-ID"))
		for i := next + 1; i <= 3; i++ {
			err := s.Send(sse.Event{ID: strconv.Itoa(i), Type: "tick", Data: fmt.Sprintf("tick %d\nof 3", i)})
			if err != nil {
				return // the client went away (s.Context() is done too)
			}
		}
	})
	srv := httptest.NewServer(handler)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Last-Event-ID", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Header.Get("Content-Type"))
	fmt.Print(string(body))
	// Output:
	// text/event-stream
	// id:2
	// event:tick
	// data:tick 2
	// data:of 3
	//
	// id:3
	// event:tick
	// data:tick 3
	// data:of 3
}
