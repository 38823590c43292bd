package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	jsclient "github.com/ssekit/sse/clients/js"
	"github.com/ssekit/sse/hub"
)

// TestJSClientServed checks /ssekit-client.js: the embedded module as
// JavaScript, cacheable and revalidated, with CORS for allowed origins only.
func TestJSClientServed(t *testing.T) {
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Hub: h, CORSOrigins: []string{"http://app.test"}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(header ...string) *http.Response {
		req := httptest.NewRequest("GET", "/ssekit-client.js", nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Result()
	}
	res := get("Origin", "http://app.test")
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, jsclient.Module) {
		t.Fatalf("GET: status %d, %d bytes; want 200 and the module (%d bytes)", res.StatusCode, len(body), len(jsclient.Module))
	}
	for name, want := range map[string]string{
		"Content-Type":                "text/javascript; charset=utf-8",
		"Access-Control-Allow-Origin": "http://app.test",
		"X-Content-Type-Options":      "nosniff",
		"Cache-Control":               "public, max-age=3600, must-revalidate",
	} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s = %q; want %q", name, got, want)
		}
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if res := get("If-None-Match", etag); res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: status %d; want 304", res.StatusCode)
	}
	if res := get("Origin", "http://evil.test"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("an origin not allowed got Access-Control-Allow-Origin %q", res.Header.Get("Access-Control-Allow-Origin"))
	}
}
