package hostile_test

// Leaks: what a subscriber may learn about updates it could not receive.
// A live-only subscriber's Last-Event-ID response header used to name the
// hub's newest update, private ones included, so an anonymous client
// learned that a private update existed and when. Ids and types the stores
// cannot take must be refused with 400, never a 500 that says something
// went wrong inside.

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
)

// cursorHeaders are the response headers that carry a stream's cursor.
var cursorHeaders = []string{"Last-Event-ID", "Mercure-Last-Event-ID"}

// TestCursorNamesNoPrivateUpdate: with a private update the newest in the
// hub, no subscriber that may not read it learns its id from the response
// headers, whichever way it asks: live-only over HTTP/1.1 or HTTP/2,
// anonymous or with a token for other topics, or resuming from an id the
// hub does not know (it answers earliest). Nor does any receive it.
func TestCursorNamesNoPrivateUpdate(t *testing.T) {
	h := startHub(t)
	publish, check := watchAcked(t, h, "watched")
	pub := e2etest.PublisherToken(t, testSecret)
	publish()
	const privateID = "private-secret-1"
	if _, err := e2etest.Publish(t.Context(), h.Client, h.URL(), pub, url.Values{
		"topic": {"https://example.com/secret"}, "id": {privateID}, "data": {"secret"}, "private": {"on"}}); err != nil {
		t.Fatalf("publishing the private update: %v", err)
	}
	otherTopics := e2etest.Token(t, testSecret, hub.Claims{Subscribe: []string{"https://example.com/public/{id}"}})
	shapes := []struct {
		name, query, lastEventID, token string
		client                          *http.Client
		want                            string // the cursor header expected; "" for none
	}{
		{"LiveOnlyHTTP1", "topic=*", "", "", h.Client, ""},
		{"LiveOnlyHTTP2", "topic=*", "", "", e2etest.NewH2CClient(t), ""},
		{"LiveOnlyWithTokenForOtherTopics", "topic=*", "", otherTopics, h.Client, ""},
		{"LiveOnlyTemplate", "topic=" + url.QueryEscape("https://example.com/{path}"), "", "", h.Client, ""},
		{"UnknownCursor", "topic=*", "never-published", "", h.Client, hub.EarliestID},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL()+"?"+s.query, nil)
			if s.lastEventID != "" {
				req.Header.Set("Last-Event-ID", s.lastEventID)
			}
			if s.token != "" {
				req.Header.Set("Authorization", "Bearer "+s.token)
			}
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatalf("subscribing: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("subscribe = %s; want 200", resp.Status)
			}
			if strings.HasSuffix(s.name, "HTTP2") && resp.ProtoMajor != 2 {
				t.Fatalf("served over %s; want HTTP/2", resp.Proto)
			}
			for _, name := range cursorHeaders {
				got, sent := resp.Header[http.CanonicalHeaderKey(name)]
				switch {
				case s.want == "" && sent:
					t.Errorf("%s: %q; want none for a live-only subscriber", name, got)
				case s.want != "" && resp.Header.Get(name) != s.want:
					t.Errorf("%s: %q; want %q", name, resp.Header.Get(name), s.want)
				}
				if strings.Contains(strings.Join(got, ","), privateID) {
					t.Errorf("%s names the private update %q", name, privateID)
				}
			}
		})
	}
	publish()
	check()
	// The unknown cursor replayed the whole history to an anonymous
	// subscriber: the public updates, never the private one.
	s := e2etest.OpenStream(t, h.Client, h.URL(), "topic=*", "never-published", 10*time.Second)
	for {
		ev := s.Next(t)
		if ev.ID == privateID || ev.Data == "secret" {
			t.Fatal("an anonymous replay delivered the private update")
		}
		if ev.ID == "watched-2" {
			break
		}
	}
}

// TestBadIDsAndTypesAre400: ids and types that would split an event, or
// that no store could keep, are refused with 400 and a reason, never a
// 500; the hub goes on serving and no accepted update is lost.
func TestBadIDsAndTypesAre400(t *testing.T) {
	h := startHub(t)
	publish, check := watchAcked(t, h, "watched")
	tok := e2etest.PublisherToken(t, testSecret)
	shapes := []struct {
		name string
		form url.Values
	}{
		{"NULInID", url.Values{"id": {"a\x00b"}}},
		{"LFInID", url.Values{"id": {"a\nevent: injected"}}},
		{"CRInType", url.Values{"type": {"a\rdata: injected"}}},
		{"LFInType", url.Values{"type": {"a\nid: injected"}}},
		{"IDFragment", url.Values{"id": {"#x"}}},
		{"IDEarliest", url.Values{"id": {hub.EarliestID}}},
		{"IDOverTheStoresLimit", url.Values{"id": {strings.Repeat("i", hub.MaxIDLength+1)}}},
		{"IDOf40KiB", url.Values{"id": {strings.Repeat("i", 40<<10)}}}, // was a 500 on bolt
		{"IDWithBidiOverride", url.Values{"id": {"safe\u202egpj.exe"}}},
		{"NULInType", url.Values{"type": {"a\x00b"}}},
		{"TypeOverTheLimit", url.Values{"type": {strings.Repeat("t", hub.MaxTypeLength+1)}}},
		{"InvalidUTF8InID", url.Values{"id": {"a\xffb"}}},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			s.form.Set("topic", "watched")
			s.form.Set("data", "refused")
			status, answer := postForm(t, h, tok, s.form.Encode())
			if status != http.StatusBadRequest || answer == "" || strings.Contains(answer, "\n") {
				t.Errorf("got %d %.200q; want 400 with a one-line reason", status, answer)
			}
			publish()
		})
	}
	// A topic over the limit, published or subscribed to, is a 400 too.
	long := strings.Repeat("t", hub.MaxTopicLength+1)
	if status, answer := postForm(t, h, tok, url.Values{"topic": {long}, "data": {"refused"}}.Encode()); status != http.StatusBadRequest {
		t.Errorf("publishing to a topic of %d bytes: %d %.200q; want 400", len(long), status, answer)
	}
	if got := e2etest.Status(h.Client, h.URL()+"?topic="+long); got != http.StatusBadRequest {
		t.Errorf("subscribing to a selector of %d bytes: %d; want 400", len(long), got)
	}
	publish()
	check()
}
