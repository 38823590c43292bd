package sse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ssekit/sse"
)

// A POST with a JSON body, as LLM streaming APIs want. The server ends the
// first response after two tokens; the client reconnects (re-sending the
// body, with Last-Event-ID), gets the rest, and stops on the 204 that
// follows.
func ExampleClient_Connect() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "retry: 10\nid: 1\ndata: {\"token\":\"Hel\"}\n\nid: 2\ndata: {\"token\":\"lo\"}\n\n")
		case 2:
			fmt.Println("reconnected with", r.Header.Get("Last-Event-ID"), "and", string(body))
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "id: 3\nevent: done\ndata: [DONE]\n\n")
		default:
			w.WriteHeader(http.StatusNoContent) // the server's "stop"
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(`{"prompt":"hi"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-…")

	es := (&sse.Client{}).Connect(req)
	defer es.Close()
	for ev, err := range es.Events() {
		var se *sse.StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNoContent {
			fmt.Println("server said stop")
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Println(ev.ID, ev.Type, ev.Data)
	}
	// Output:
	// 1 message {"token":"Hel"}
	// 2 message {"token":"lo"}
	// reconnected with 2 and {"prompt":"hi"}
	// 3 done [DONE]
	// server said stop
}
