package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/internal/browsertest"
	"github.com/ssekit/sse/internal/poll"
)

// fastDemo is the demo's pace in tests.
var fastDemo = demoConfig{Interval: 20 * time.Millisecond, Retry: 50 * time.Millisecond}

// getEvents requests the stream with an optional Last-Event-ID and returns
// the response and its events until the server ends it.
func getEvents(t *testing.T, client *http.Client, url, lastEventID string) (*http.Response, []sse.Event) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var events []sse.Event
	for ev, err := range sse.NewDecoder(resp.Body).Events() {
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		events = append(events, ev)
	}
	return resp, events
}

func TestDemoEvents(t *testing.T) {
	servers(t, newDemoHandler(fastDemo), func(t *testing.T, srv *httptest.Server, _ *Main) {
		resp, events := getEvents(t, srv.Client(), srv.URL+"/events", "")
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Errorf("Content-Type %q; want text/event-stream", ct)
		}
		if len(events) != len(demoSentences) {
			t.Fatalf("got %d events; want %d: %+v", len(events), len(demoSentences), events)
		}
		for i, ev := range events {
			want := sse.Event{ID: strconv.Itoa(i + 1), Type: "message", Data: demoSentences[i]}
			if i == 0 {
				want.Retry, want.HasRetry = fastDemo.Retry, true
			}
			if ev != want {
				t.Errorf("event %d: got %+v; want %+v", i, ev, want)
			}
		}
	})
}

// TestDemoResume checks Last-Event-ID: a reconnection continues after the
// last sentence received, and one after the last gets 204, so a browser
// stops instead of replaying from the start.
func TestDemoResume(t *testing.T) {
	srv := httptest.NewServer(newDemoHandler(fastDemo))
	t.Cleanup(srv.Close)
	tests := []struct {
		lastEventID string
		status      int
		firstID     int // of the events sent; 0 for none
	}{
		{"", 200, 1},
		{"0", 200, 1},
		{"2", 200, 3},
		{"4", 200, 5},
		{"5", 204, 0},
		{"99", 204, 0},
		{"not a number", 200, 1},
		{"-3", 200, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("Last-Event-ID %q", tt.lastEventID), func(t *testing.T) {
			resp, events := getEvents(t, srv.Client(), srv.URL+"/events", tt.lastEventID)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d; want %d", resp.StatusCode, tt.status)
			}
			var ids []string
			for _, ev := range events {
				ids = append(ids, ev.ID)
			}
			var want []string
			for id := tt.firstID; id > 0 && id <= len(demoSentences); id++ {
				want = append(want, strconv.Itoa(id))
			}
			if fmt.Sprint(ids) != fmt.Sprint(want) {
				t.Errorf("ids %v; want %v", ids, want)
			}
			if len(events) > 0 && !events[0].HasRetry {
				t.Errorf("first event %+v has no retry; want the demo's reconnection time", events[0])
			}
		})
	}
}

func TestDemoPage(t *testing.T) {
	srv := httptest.NewServer(newDemoHandler(fastDemo))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("GET /: %s, Content-Type %q; want 200 text/html", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"new EventSource('/events')", "eventSource.onmessage", "eventSource.onerror", "reconnecting…"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(string(body), "eventSource.close()\n") || strings.Contains(string(body), "eventSource.close();") {
		t.Error("the page closes its EventSource; want it to let the browser reconnect")
	}

	resp, err = srv.Client().Get(srv.URL + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %s; want 404", resp.Status)
	}
}

// TestDemoCommand runs "ssekit demo" and "ssekit listen" against it: the five
// sentences, a reconnection, 204, exit 0; then the demo stops on its
// context.
func TestDemoCommand(t *testing.T) {
	demo, _, demoErr := testMain()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- demo.Exit(demo.Run(ctx, []string{"demo", "--addr", "127.0.0.1:0", "--interval", "10ms"}))
	}()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if !stopped {
			<-done
		}
	})

	addr := regexp.MustCompile(`open (http://127\.0\.0\.1:\d+)/ in a browser`)
	var base string
	poll.Until(t, "demo to say where it listens", 30*time.Second, func() bool {
		if m := addr.FindStringSubmatch(demoErr.String()); m != nil {
			base = m[1]
		}
		return base != ""
	})

	got := run(t, nil, "listen", "--json", base+"/events")
	if got.code != 0 {
		t.Errorf("listen: exit code %d; want 0 (stderr %q)", got.code, got.stderr)
	}
	var want strings.Builder
	for i, s := range demoSentences {
		retry := ""
		if i == 0 {
			retry = `,"retry":1000`
		}
		fmt.Fprintf(&want, `{"type":"message","data":%q,"id":"%d"%s}`+"\n", s, i+1, retry)
	}
	if got.stdout != want.String() {
		t.Errorf("listen stdout:\n%s\nwant:\n%s", got.stdout, want.String())
	}
	if !strings.HasSuffix(got.stderr, "reconnecting in 1s with Last-Event-ID \"5\"\nssekit listen: the server answered 204 No Content: the stream is over\n") {
		t.Errorf("listen stderr %q; want a reconnection ended by 204", got.stderr)
	}

	cancel()
	select {
	case code := <-done:
		stopped = true
		if code != 0 {
			t.Errorf("demo exit code %d; want 0 (stderr %q)", code, demoErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop when its context ended")
	}
}

// pageMessages is the JavaScript for the texts of the page's messages.
const pageMessages = `Array.from(document.querySelectorAll("p.message"), p => p.textContent)`

// wantMessages are the page's messages once every sentence arrived once.
func wantMessages() []string {
	var want []string
	for _, s := range demoSentences {
		want = append(want, "Message: "+s)
	}
	return want
}

// TestDemoBrowser loads the page in headless Chromium and sees the five
// sentences, in order, once, and then the end of the stream (the 204).
func TestDemoBrowser(t *testing.T) {
	srv := httptest.NewServer(newDemoHandler(fastDemo))
	t.Cleanup(srv.Close)
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, `document.querySelector("p.finished") !== null`, 30*time.Second)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](pageMessages))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(wantMessages()) {
		t.Errorf("page messages:\n%q\nwant:\n%q", got, wantMessages())
	}
}

// TestDemoBrowserReconnect stops the demo server in the middle of the
// stream and starts a new one on the same port: the page reconnects by
// itself, the new server resumes from the browser's Last-Event-ID, and the
// page ends with every sentence exactly once.
func TestDemoBrowserReconnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	// The first server sends a sentence a second, so that it is stopped
	// after the second sentence and long before the third.
	first := &http.Server{Handler: newDemoHandler(demoConfig{Interval: time.Second, Retry: 50 * time.Millisecond})}
	go first.Serve(ln)
	t.Cleanup(func() { first.Close() })

	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	browsertest.WaitFor(t, ctx, pageMessages+`.length >= 2`, 30*time.Second)
	first.Close() // drops the stream: the page sees an error
	before, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](pageMessages))
	if err != nil {
		t.Fatal(err)
	}
	if len(before) >= len(demoSentences) {
		t.Fatalf("the page had all %d messages before the server stopped; the test proves nothing", len(before))
	}
	browsertest.WaitFor(t, ctx, `document.querySelector("p.reconnecting") !== null`, 30*time.Second)

	// Restart on the same address; the browser keeps retrying meanwhile.
	var ln2 net.Listener
	poll.Until(t, "the address to be free again", 10*time.Second, func() bool {
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	second := &http.Server{Handler: newDemoHandler(fastDemo)}
	served := make(chan error, 1)
	go func() { served <- second.Serve(ln2) }()
	t.Cleanup(func() {
		second.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("second server: %v", err)
		}
	})

	browsertest.WaitFor(t, ctx, `document.querySelector("p.finished") !== null`, 60*time.Second)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](pageMessages))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(wantMessages()) {
		t.Errorf("page messages (%d before the restart):\n%q\nwant:\n%q", len(before), got, wantMessages())
	}
}
