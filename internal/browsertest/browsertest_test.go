package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse/internal/browsertest"
)

// TestEventSource checks the helper end to end: the browser loads a page
// whose EventSource receives one event from a test server.
func TestEventSource(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!DOCTYPE html><body><p id="out"></p><script>
new EventSource("/events").onmessage = e => { document.getElementById("out").textContent = e.data; };
</script></body>`)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: hello from the server\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.getElementById("out").textContent === "hello from the server"`, 30*time.Second)
}
