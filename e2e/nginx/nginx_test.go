package nginx_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/e2etest"
	"github.com/ssekit/sse/internal/testenv"
)

// oneHub rewrites testdata/ssekit.conf for a hub at addr.
func oneHub(t *testing.T, addr string) string {
	t.Helper()
	return e2etest.ReplaceOnce(t, readSite(t, "ssekit.conf"), "server 127.0.0.1:8080;", "server "+addr+";")
}

// checkOneByOne subscribes through nginx and publishes n updates one at a
// time, each only after the previous one arrived: nginx holds nothing back
// (a buffering proxy would keep the first small event until its buffer
// fills, and the test would wait in vain).
func checkOneByOne(t *testing.T, ng *nginxProc, topic string, n int) *http.Response {
	t.Helper()
	c := e2etest.NewClient(t)
	s := openStream(t, c, ng.hubURL()+"?topic="+url.QueryEscape(topic))
	resp := s.waitResponse(t)
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/event-stream") {
		t.Errorf("Content-Type through nginx: %q; want text/event-stream", got)
	}
	for i := range n {
		data := fmt.Sprintf("update %d", i)
		id := mustPublish(t, c, ng.hubURL(), topic, "", data)
		ev := s.nextEvent(t)
		if ev.ID != id || ev.Data != data {
			t.Fatalf("event %d through nginx: got id %q data %q; want %q %q", i, ev.ID, ev.Data, id, data)
		}
	}
	return resp
}

// TestBehindNginx runs one hub behind nginx with the site configuration of
// docs/deploying.md ("Behind nginx") and checks what a subscriber and a
// publisher rely on through it.
func TestBehindNginx(t *testing.T) {
	testenv.NeedCommand(t, "nginx")
	h := startHub(t, "--heartbeat", "200ms")
	ng := startNginx(t, oneHub(t, h.Addr))
	c := e2etest.NewClient(t)

	t.Run("EventsOneByOne", func(t *testing.T) {
		checkOneByOne(t, ng, "https://example.com/one-by-one", 5)
	})

	t.Run("Heartbeats", func(t *testing.T) {
		s := openStream(t, c, ng.hubURL()+"?topic=https://example.com/idle")
		heartbeats := 0
		for heartbeats < 3 {
			it, err := s.nextItem(waitTimeout)
			switch {
			case err != nil:
				t.Fatalf("after %d heartbeats: %v", heartbeats, err)
			case it.end != nil:
				t.Fatalf("after %d heartbeats the stream ended: %v", heartbeats, it.end)
			case !it.isComment:
				t.Fatalf("got event %+v on an idle topic; want heartbeats only", it.ev)
			}
			heartbeats++
		}
	})

	t.Run("PublishThroughNginx", func(t *testing.T) {
		tok := publisherToken(t)
		code, body := publish(c, ng.hubURL(), tok, url.Values{"topic": {"https://example.com/p"}, "id": {"pub-1"}, "data": {"x"}})
		if code != http.StatusOK || body != "pub-1" {
			t.Errorf("publish through nginx: %d %q; want 200 %q", code, body, "pub-1")
		}
		// The hub's errors come through as they are, with their reason.
		// (A reused id is accepted since draft-08; "*" is still refused.)
		code, body = publish(c, ng.hubURL(), tok, url.Values{"topic": {"*"}, "data": {"x"}})
		if code != http.StatusBadRequest || !strings.Contains(body, "reserved") {
			t.Errorf("reserved topic through nginx: %d %q; want 400 with the reason", code, body)
		}
		code, body = publish(c, ng.hubURL(), "not-a-token", url.Values{"topic": {"https://example.com/p"}, "data": {"x"}})
		if code != http.StatusUnauthorized {
			t.Errorf("publish with a bad token through nginx: %d %q; want 401", code, body)
		}
	})

	t.Run("ResumeWithLastEventID", func(t *testing.T) {
		const topic = "https://example.com/resume"
		var ids []string
		for i := range 5 {
			ids = append(ids, mustPublish(t, c, ng.hubURL(), topic, fmt.Sprintf("resume-%d", i), fmt.Sprintf("r%d", i)))
		}
		for _, tt := range []struct {
			name    string
			query   string
			headers []string
		}{
			{"Header", "", []string{"Last-Event-ID", ids[1]}},
			{"Query", "&lastEventID=" + url.QueryEscape(ids[1]), nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := openStream(t, c, ng.hubURL()+"?topic="+url.QueryEscape(topic)+tt.query, tt.headers...)
				for _, want := range ids[2:] { // with the earlier subtests' live updates
					if ev := s.nextEvent(t); ev.ID != want {
						t.Fatalf("resumed after %s: got id %q; want %q", ids[1], ev.ID, want)
					}
				}
				// Then live, on the same stream.
				live := mustPublish(t, c, ng.hubURL(), topic, "", "live")
				if ev := s.nextEvent(t); ev.ID != live {
					t.Fatalf("after the replay: got id %q; want the live update %q", ev.ID, live)
				}
				ids = append(ids, live)
			})
		}
	})

	// A private update reaches a subscriber whose token nginx passed on, in
	// the Authorization header or in the mercureAuthorization cookie; an
	// anonymous subscriber gets only the public update that follows it.
	t.Run("PrivateUpdates", func(t *testing.T) {
		const topic = "https://example.com/private"
		subTok := token(t, hub.Claims{Subscribe: []string{topic}})
		q := ng.hubURL() + "?topic=" + url.QueryEscape(topic)
		streams := map[string]*stream{
			"Authorization": openStream(t, c, q, "Authorization", "Bearer "+subTok),
			"Cookie":        openStream(t, c, q, "Cookie", "mercureAuthorization="+subTok),
			"anonymous":     openStream(t, c, q),
		}
		for _, s := range streams {
			s.waitResponse(t)
		}
		private := mustPublish(t, c, ng.hubURL(), topic, "", "secret", "private", "on")
		public := mustPublish(t, c, ng.hubURL(), topic, "", "public")
		for name, s := range streams {
			want := []string{private, public}
			if name == "anonymous" {
				want = want[1:]
			}
			for _, id := range want {
				if ev := s.nextEvent(t); ev.ID != id {
					t.Errorf("%s subscriber: got id %q (data %q); want %q", name, ev.ID, ev.Data, id)
					break
				}
			}
		}
	})
}

// TestProxyBuffering shows what the hub's X-Accel-Buffering: no header does.
// With proxy_buffering on (nginx's default) the header turns buffering off
// for the stream, and events still pass one by one; with the header
// ignored (proxy_ignore_headers X-Accel-Buffering) nginx keeps the first
// event, and even the response head, until more data fills its buffers.
func TestProxyBuffering(t *testing.T) {
	testenv.NeedCommand(t, "nginx")
	t.Run("OnButHeaderHonoured", func(t *testing.T) {
		h := startHub(t, "--heartbeat", "-1s")
		site := e2etest.ReplaceOnce(t, oneHub(t, h.Addr), "proxy_buffering off;", "proxy_buffering on;")
		ng := startNginx(t, site)
		checkOneByOne(t, ng, "https://example.com/default-buffering", 5)
	})

	t.Run("GzipOn", func(t *testing.T) {
		h := startHub(t, "--heartbeat", "-1s")
		site := e2etest.ReplaceOnce(t, oneHub(t, h.Addr), "proxy_cache off;",
			"proxy_cache off;\n        gzip on;\n        gzip_types text/event-stream;\n        gzip_proxied any;")
		ng := startNginx(t, site)
		resp := checkOneByOne(t, ng, "https://example.com/gzip", 5)
		if !resp.Uncompressed {
			t.Errorf("the stream was not gzip-compressed (Content-Encoding %q); want compressed", resp.Header.Get("Content-Encoding"))
		}
	})

	t.Run("OnHeaderIgnored", func(t *testing.T) {
		h := startHub(t, "--heartbeat", "-1s")
		site := e2etest.ReplaceOnce(t, oneHub(t, h.Addr), "proxy_buffering off;",
			"proxy_buffering on;\n        proxy_ignore_headers X-Accel-Buffering;")
		ng := startNginx(t, site)
		c := e2etest.NewClient(t)
		const topic = "https://example.com/buffered"
		s := openStream(t, c, ng.hubURL()+"?topic="+url.QueryEscape(topic))
		// The subscription reached the hub (its gauge counts it), so the
		// response head and the first event left the hub at once.
		waitSubscribers(t, h, 1)
		first := mustPublish(t, c, ng.hubURL(), topic, "", "first")
		// A bounded wait for something that must NOT happen: the event is
		// held in nginx's buffer.
		if it, err := s.nextItem(2 * time.Second); !errors.Is(err, errNothing) {
			t.Fatalf("with buffering on and X-Accel-Buffering ignored, the stream gave %+v, %v; want nothing until the buffer fills", it, err)
		}
		// 64 updates of 1 KiB fill nginx's buffers (proxy_buffer_size and
		// proxy_buffers: 8 × 4 KiB or 8 KiB): now the first one comes out.
		filler := strings.Repeat("x", 1024)
		for range 64 {
			mustPublish(t, c, ng.hubURL(), topic, "", filler)
		}
		if ev := s.nextEvent(t); ev.ID != first || ev.Data != "first" {
			t.Fatalf("first event once the buffer filled: got id %q data %q; want %q", ev.ID, ev.Data, first)
		}
	})
}

// TestReadTimeout: nginx ends a stream on which the hub sent nothing for
// proxy_read_timeout; heartbeats more frequent than that keep it open.
// Here proxy_read_timeout is 1s, and the hub's heartbeat 200ms or none.
func TestReadTimeout(t *testing.T) {
	testenv.NeedCommand(t, "nginx")
	withTimeout := func(t *testing.T, h *e2etest.Hub) *nginxProc {
		site := e2etest.ReplaceOnce(t, oneHub(t, h.Addr), "proxy_read_timeout 120s;", "proxy_read_timeout 1s;")
		return startNginx(t, site)
	}
	t.Run("HeartbeatsKeepStreamsOpen", func(t *testing.T) {
		h := startHub(t, "--heartbeat", "200ms")
		ng := withTimeout(t, h)
		c := e2etest.NewClient(t)
		const topic = "https://example.com/quiet"
		s := openStream(t, c, ng.hubURL()+"?topic="+url.QueryEscape(topic))
		// 15 heartbeats at 200ms: about 3 s, three read timeouts long.
		for n := 0; n < 15; {
			it, err := s.nextItem(waitTimeout)
			if err != nil || it.end != nil {
				t.Fatalf("after %d heartbeats: %v %v; want the stream open", n, err, it.end)
			}
			if it.isComment {
				n++
			}
		}
		id := mustPublish(t, c, ng.hubURL(), topic, "", "still here")
		if ev := s.nextEvent(t); ev.ID != id {
			t.Fatalf("after the quiet time: got id %q; want %q", ev.ID, id)
		}
	})
	t.Run("NoHeartbeatsStreamCut", func(t *testing.T) {
		h := startHub(t, "--heartbeat", "-1s")
		ng := withTimeout(t, h)
		c := e2etest.NewClient(t)
		s := openStream(t, c, ng.hubURL()+"?topic=https://example.com/silent")
		for {
			it, err := s.nextItem(waitTimeout)
			if err != nil {
				t.Fatalf("stream without heartbeats: %v; want nginx to end it after proxy_read_timeout", err)
			}
			if it.end != nil {
				t.Logf("nginx ended the silent stream: %v", it.end)
				return
			}
			if !it.isComment {
				t.Fatalf("got event %+v; want none", it.ev)
			}
		}
	})
}

// TestDocShowsTestedConfigs: the nginx configurations in
// docs/deploying.md are the files these tests run, character for
// character.
func TestDocShowsTestedConfigs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deploying.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ssekit.conf", "ssekit-lb.conf"} {
		if !strings.Contains(string(doc), "```nginx\n"+readSite(t, name)+"```\n") {
			t.Errorf("docs/deploying.md does not show testdata/%s verbatim in an nginx code block", name)
		}
	}
}
