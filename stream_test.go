package sse_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/ssetest"
)

// forEachProto runs f against a server started over HTTP/1.1 and over
// HTTP/2 (TLS), with a client for it.
func forEachProto(t *testing.T, h http.Handler, f func(t *testing.T, srv *httptest.Server)) {
	t.Helper()
	ssetest.Run(t, func(t *testing.T, proto string) { f(t, ssetest.NewServer(t, proto, h)) })
}

func get(t *testing.T, srv *httptest.Server, path string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestStreamHeadersAndImmediateDelivery(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		if err := s.Send(sse.Event{ID: "1", Type: "greeting", Data: "hello\nworld"}); err != nil {
			t.Error(err)
		}
		select { // hold the response open: the event must arrive before the end
		case <-release:
		case <-s.Context().Done():
		}
	})
	forEachProto(t, h, func(t *testing.T, srv *httptest.Server) {
		resp := get(t, srv, "/", nil)
		for name, want := range map[string]string{
			"Content-Type":      "text/event-stream",
			"Cache-Control":     "no-cache",
			"X-Accel-Buffering": "no",
		} {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("%s = %q; want %q", name, got, want)
			}
		}
		ev, err := sse.NewDecoder(resp.Body).Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID != "1" || ev.Type != "greeting" || ev.Data != "hello\nworld" {
			t.Errorf("got %+v", ev)
		}
		release <- struct{}{}
	})
}

func TestStreamBatchIsOneWrite(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{Heartbeat: -1})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		if err := s.Send(sse.Event{Data: "a"}, sse.Event{Data: "b"}, sse.Event{ID: "x\ny"}); !errors.Is(err, sse.ErrInvalidID) {
			t.Errorf("invalid batch: err = %v; want ErrInvalidID", err)
		}
		if err := s.Send(sse.Event{Data: "a"}, sse.Event{Data: "b"}); err != nil {
			t.Error(err)
		}
	})
	forEachProto(t, h, func(t *testing.T, srv *httptest.Server) {
		body, err := io.ReadAll(get(t, srv, "/", nil).Body)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(body), "data:a\n\ndata:b\n\n"; got != want {
			t.Errorf("body = %q; want %q (nothing of the invalid batch)", got, want)
		}
	})
}

func TestStreamHeartbeat(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{Heartbeat: 5 * time.Millisecond})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		<-s.Context().Done()
	})
	forEachProto(t, h, func(t *testing.T, srv *httptest.Server) {
		resp := get(t, srv, "/", nil)
		d := sse.NewDecoder(resp.Body)
		beats := 0
		d.OnComment = func(string) {
			if beats++; beats == 3 {
				resp.Body.Close()
			}
		}
		d.Next() // returns when the body is closed after three heartbeats
		if beats < 3 {
			t.Fatalf("got %d heartbeats; want 3", beats)
		}
	})
}

func TestStreamGzipFlushesEachEvent(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{Compress: true})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		s.Send(sse.Event{ID: "1", Data: strings.Repeat("compressible ", 100)})
		select {
		case <-release:
		case <-s.Context().Done():
		}
	})
	forEachProto(t, h, func(t *testing.T, srv *httptest.Server) {
		resp := get(t, srv, "/", http.Header{"Accept-Encoding": {"br;q=1, gzip;q=0.8"}})
		if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
			t.Fatalf("Content-Encoding = %q; want gzip", got)
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := sse.NewDecoder(zr).Next()
		if err != nil || ev.ID != "1" {
			t.Fatalf("got %+v, %v; want event 1 before the stream ends", ev, err)
		}
		release <- struct{}{}
	})
}

func TestStreamNoGzipWhenRefused(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{Compress: true})
		if err != nil {
			t.Error(err)
			return
		}
		s.Send(sse.Event{Data: "plain"})
		s.Close()
	})
	forEachProto(t, h, func(t *testing.T, srv *httptest.Server) {
		for _, accept := range []string{"identity", "gzip;q=0", "deflate"} {
			resp := get(t, srv, "/", http.Header{"Accept-Encoding": {accept}})
			body, _ := io.ReadAll(resp.Body)
			if resp.Header.Get("Content-Encoding") != "" || string(body) != "data:plain\n\n" {
				t.Errorf("Accept-Encoding %q: encoding %q body %q; want plain", accept, resp.Header.Get("Content-Encoding"), body)
			}
		}
	})
}

func TestStreamContextEndsWhenClientLeaves(t *testing.T) {
	ended := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{Heartbeat: -1})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		s.Send(sse.Event{Data: "hi"})
		<-s.Context().Done()
		ended <- context.Cause(s.Context())
	})
	forEachProto(t, h, func(t *testing.T, srv *httptest.Server) {
		resp := get(t, srv, "/", nil)
		if _, err := sse.NewDecoder(resp.Body).Next(); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		select {
		case err := <-ended:
			if err == nil {
				t.Error("context ended without a cause")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("handler did not notice the client leaving")
		}
	})
}

func TestStreamWriteTimeoutDropsStalledClient(t *testing.T) {
	ended := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{Heartbeat: -1, WriteTimeout: 50 * time.Millisecond})
		if err != nil {
			t.Error(err)
			return
		}
		defer s.Close()
		big := sse.Event{Data: strings.Repeat("x", 1<<20)}
		for range 256 { // at most 256 MiB: far more than socket buffers hold
			if err := s.Send(big); err != nil {
				ended <- err
				return
			}
		}
		ended <- nil
	})
	forEachProto(t, h, func(t *testing.T, srv *httptest.Server) {
		resp := get(t, srv, "/", nil) // and never read the body
		select {
		case err := <-ended:
			if err == nil {
				t.Fatal("Send never failed although the client never read")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Send blocked on a stalled client")
		}
		resp.Body.Close()
	})
}

func TestStreamClosed(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w, r, sse.StreamConfig{})
		if err != nil {
			t.Error(err)
			return
		}
		s.Close()
		if err := s.Send(sse.Event{Data: "late"}); !errors.Is(err, sse.ErrStreamClosed) {
			t.Errorf("Send after Close: err = %v; want ErrStreamClosed", err)
		}
		if s.Context().Err() == nil {
			t.Error("context not done after Close")
		}
	})
	forEachProto(t, h, func(t *testing.T, srv *httptest.Server) {
		io.ReadAll(get(t, srv, "/", nil).Body)
	})
}
