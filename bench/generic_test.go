package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/ssetest"
)

// getRequest is a StreamConfig.NewRequest for a GET of url.
func getRequest(url string) func(ctx context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	}
}

// runStream runs cfg bounded by its own deadline.
func runStream(t *testing.T, cfg StreamConfig) (*StreamReport, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return RunStream(ctx, cfg)
}

// TestRunStreamKnownStream counts exactly what a server of five events per
// stream sends to three clients asking for five each, over both protocols.
func TestRunStreamKnownStream(t *testing.T) {
	for _, proto := range ssetest.Protocols {
		t.Run(proto, func(t *testing.T) {
			srv := ssetest.NewServer(t, proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.Header.Get("X-Test") != "yes" {
					http.Error(w, "want POST with X-Test", http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				for i := range 5 {
					fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
					w.(http.Flusher).Flush()
				}
				<-r.Context().Done() // hold: the client leaves once it has its five
			}))
			rep, err := runStream(t, StreamConfig{
				URL:        srv.URL,
				HTTPClient: srv.Client(),
				NewRequest: func(ctx context.Context) (*http.Request, error) {
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("{}"))
					if err == nil {
						req.Header.Set("X-Test", "yes")
					}
					return req, err
				},
				Clients:     3,
				ConnectRate: 1000,
				Events:      5,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Clients != 3 || rep.Connected != 3 || rep.Completed != 3 || rep.Received != 15 {
				t.Errorf("clients %d connected %d completed %d received %d; want 3, 3, 3, 15",
					rep.Clients, rep.Connected, rep.Completed, rep.Received)
			}
			if rep.Attempts != 3 || rep.Reconnects != 0 || rep.TimedOut {
				t.Errorf("attempts %d reconnects %d timed out %v; want 3, 0, false", rep.Attempts, rep.Reconnects, rep.TimedOut)
			}
			if want := (StreamErrors{}); fmt.Sprint(rep.Errors) != fmt.Sprint(want) {
				t.Errorf("errors %+v; want none", rep.Errors)
			}
			if rep.ConnectLatency.Count != 3 || rep.FirstEvent.Count != 3 || rep.InterArrival.Count != 12 {
				t.Errorf("connect %d, first event %d, inter-arrival %d samples; want 3, 3, 12",
					rep.ConnectLatency.Count, rep.FirstEvent.Count, rep.InterArrival.Count)
			}
			if rep.EventsPerSecond <= 0 || rep.PerClient <= 0 || rep.MinClient <= 0 {
				t.Errorf("rates %g, %g, %g; want positive", rep.EventsPerSecond, rep.PerClient, rep.MinClient)
			}
			var text, js bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "15: ") || !strings.Contains(text.String(), "3 of 3") {
				t.Errorf("text report lacks the counts:\n%s", text.String())
			}
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			var back StreamReport
			if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Received != 15 {
				t.Errorf("JSON report %s: received %d, %v", js.String(), back.Received, err)
			}
		})
	}
}

// TestRunStreamFailingAttempts meets a mock whose first attempts fail: two
// 503s (the stream fails for good; the bench starts over), a dropped
// connection (a network error; the client reconnects), then the stream.
func TestRunStreamFailingAttempts(t *testing.T) {
	m := ssetest.NewMock(t, `
route GET /events
attempt 1-2
status 503
attempt 3
drop
attempt 4-
> id: 1
> data: one
>
> id: 2
> data: two
>
> id: 3
> data: three
>
hold
`)
	rep, err := runStream(t, StreamConfig{
		URL:        m.URL + "/events",
		NewRequest: getRequest(m.URL + "/events"),
		Clients:    1,
		Events:     3,
		Retry:      time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Attempts != 4 || rep.Reconnects != 3 {
		t.Errorf("attempts %d reconnects %d; want 4, 3", rep.Attempts, rep.Reconnects)
	}
	if rep.Errors.Status["503"] != 2 || len(rep.Errors.Status) != 1 || rep.Errors.Network != 1 ||
		rep.Errors.ContentType != 0 || rep.Errors.Other != 0 {
		t.Errorf("errors %+v; want 2×503 and 1 network", rep.Errors)
	}
	if rep.Received != 3 || rep.Completed != 1 || rep.Connected != 1 {
		t.Errorf("received %d completed %d connected %d; want 3, 1, 1", rep.Received, rep.Completed, rep.Connected)
	}
	if !strings.Contains(rep.FirstError, "503") {
		t.Errorf("first error %q; want the 503", rep.FirstError)
	}
}

// TestRunStreamCleanEnds counts the reconnections after streams the server
// ends cleanly, and events over them.
func TestRunStreamCleanEnds(t *testing.T) {
	m := ssetest.NewMock(t, `
> retry: 1
> data: x
>
`)
	rep, err := runStream(t, StreamConfig{
		URL: m.URL, NewRequest: getRequest(m.URL), Clients: 2, Events: 4, Retry: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each client gets one event per connection: four connections, the
	// last one left by the client, three ended by the server.
	if rep.Received != 8 || rep.Attempts != 8 || rep.Reconnects != 6 || rep.Errors.EndOfStream != 6 {
		t.Errorf("received %d attempts %d reconnects %d clean ends %d; want 8, 8, 6, 6",
			rep.Received, rep.Attempts, rep.Reconnects, rep.Errors.EndOfStream)
	}
	if rep.InterArrival.Count != 0 {
		t.Errorf("inter-arrival %d samples; want none (one event per connection)", rep.InterArrival.Count)
	}
}

// TestRunStreamNoClient is a run where every attempt is refused: the wrong
// Content-Type, counted, and ErrNoClient with the report.
func TestRunStreamNoClient(t *testing.T) {
	m := ssetest.NewMock(t, "header Content-Type: text/plain\n> data: x\n>\n")
	rep, err := runStream(t, StreamConfig{
		URL: m.URL, NewRequest: getRequest(m.URL), Clients: 2, Duration: 300 * time.Millisecond, Retry: 50 * time.Millisecond,
	})
	if !errors.Is(err, ErrNoClient) {
		t.Fatalf("err %v; want ErrNoClient", err)
	}
	if rep == nil || rep.Errors.ContentType < 2 || rep.Connected != 0 || rep.Received != 0 || !rep.TimedOut {
		t.Fatalf("report %+v; want at least 2 content-type errors, nothing connected, timed out", rep)
	}
	if rep.Errors.ContentType != rep.Attempts {
		t.Errorf("%d content-type errors for %d attempts; want one each", rep.Errors.ContentType, rep.Attempts)
	}
}

// TestRunStreamBounds refuses a remote endpoint and configurations past
// the caps.
func TestRunStreamBounds(t *testing.T) {
	ctx := context.Background()
	req := getRequest("http://192.0.2.1/")
	if _, err := RunStream(ctx, StreamConfig{URL: "http://192.0.2.1/", NewRequest: req}); !errors.Is(err, ErrRemoteTarget) {
		t.Errorf("remote endpoint: %v; want ErrRemoteTarget", err)
	}
	local := "http://127.0.0.1:1/"
	for name, cfg := range map[string]StreamConfig{
		"clients":  {Clients: MaxStreamClients + 1},
		"rate":     {ConnectRate: MaxStreamConnectRate + 1},
		"duration": {Duration: MaxStreamDuration + time.Second},
		"events":   {Events: -1},
		"url":      {URL: "ftp://127.0.0.1/"},
	} {
		if cfg.URL == "" {
			cfg.URL = local
		}
		cfg.NewRequest = req
		if _, err := RunStream(ctx, cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v; want ErrInvalidConfig", name, err)
		}
	}
}

// TestRunStreamHostileEndpoint meets an endpoint that sends an event over
// the size bound and one that redirects off loopback: each attempt fails
// (counted in Other) and the bench follows neither.
func TestRunStreamHostileEndpoint(t *testing.T) {
	m := ssetest.NewMock(t, `
route GET /big
bigevent 64KiB
hold
route GET /away
status 302
header Location: http://192.0.2.1/events
`)
	for _, path := range []string{"/big", "/away"} {
		t.Run(path, func(t *testing.T) {
			rep, err := runStream(t, StreamConfig{
				URL: m.URL + path, NewRequest: getRequest(m.URL + path), Clients: 1,
				MaxEventSize: 16 << 10, Duration: 300 * time.Millisecond, Retry: 100 * time.Millisecond,
			})
			if path == "/away" && !errors.Is(err, ErrNoClient) {
				t.Errorf("err %v; want ErrNoClient", err)
			}
			if rep == nil || rep.Errors.Other < 1 || rep.Received != 0 || rep.Errors.Network != 0 {
				t.Fatalf("report %+v; want Other errors only, no event", rep)
			}
			if path == "/away" && !strings.Contains(rep.FirstError, "allow-remote") {
				t.Errorf("first error %q; want the refused redirect", rep.FirstError)
			}
		})
	}
	if _, err := RunStream(context.Background(), StreamConfig{URL: m.URL, NewRequest: getRequest(m.URL), MaxEventSize: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("negative max event size: %v; want ErrInvalidConfig", err)
	}
}
