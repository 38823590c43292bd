package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/ssetest"
)

// postBatch posts body to the batch route with token and returns the
// response, its body read.
func (th *testHub) postBatch(token, query string, body io.Reader) (*http.Response, string) {
	th.t.Helper()
	req, _ := http.NewRequest("POST", th.http.URL+hub.BatchPath+query, body)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+token)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := th.http.Client().Do(req.WithContext(ctx))
	if err != nil {
		th.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestBatchPublish: a batch's updates are stored and delivered in order,
// each field as a form publish gives it, and acknowledged with every id in
// order; blank lines and CRLF line ends are fine.
func TestBatchPublish(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		sub := th.subscribe(topics("a", "b"), nil)
		body := `{"topic":"a","data":"one","id":"fi\"rst é"}` + "\r\n\n" +
			`{"topic":["x","b"],"data":"two\nlines","type":"kind","retry":1500}` + "\n" +
			`{"topic":"a","data":"three"}` // no final newline
		resp, got := th.postBatch(th.publisher(), "", strings.NewReader(body))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("batch: %d %q", resp.StatusCode, got)
		}
		var ack struct{ IDs []string }
		if err := json.Unmarshal([]byte(got), &ack); err != nil || len(ack.IDs) != 3 || ack.IDs[0] != `fi"rst é` {
			t.Fatalf("acknowledgement %q (%v); want three ids, the first fi\"rst é", got, err)
		}
		want := []struct{ id, data, typ string }{{`fi"rst é`, "one", "message"}, {ack.IDs[1], "two\nlines", "kind"}, {ack.IDs[2], "three", "message"}}
		for i, w := range want {
			ev := sub.next()
			if ev.ID != w.id || ev.Data != w.data || ev.Type != w.typ {
				t.Errorf("event %d: %+v; want id %q data %q type %q", i, ev, w.id, w.data, w.typ)
			}
			if i == 1 && ev.Retry != 1500*time.Millisecond {
				t.Errorf("event 1 retry %v; want 1.5s", ev.Retry)
			}
		}
		// An empty batch publishes nothing and says so.
		if resp, got := th.postBatch(th.publisher(), "", strings.NewReader("\n")); resp.StatusCode != 200 || got != `{"ids":[]}`+"\n" {
			t.Errorf("empty batch: %d %q; want 200 {\"ids\":[]}", resp.StatusCode, got)
		}
	})
}

// TestBatchRefusalNamesIndex: a refused batch names the failing update in
// its reason and in the Ssekit-Batch-Index header; nothing of it is stored.
func TestBatchRefusalNamesIndex(t *testing.T) {
	th := newTestHub(t, ssetest.HTTP1, nil)
	sub := th.subscribe(topics("a"), nil)
	taken := th.mustPublish("taken", "t")
	body := `{"topic":"a","data":"x"}` + "\n" + `{"topic":"a","data":"y"}` + "\n" + `{"topic":"a","id":"` + taken + `"}` + "\n"
	resp, got := th.postBatch(th.publisher(), "", strings.NewReader(body))
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Ssekit-Batch-Index") != "2" || !strings.HasPrefix(got, "update 2: ") {
		t.Fatalf("batch with a retained id at 2: %d, index %q, %q; want 409, 2, \"update 2: …\"", resp.StatusCode, resp.Header.Get("Ssekit-Batch-Index"), got)
	}
	th.mustPublish("after", "a")
	if d := sub.nextData(); d != "after" {
		t.Fatalf("subscriber got %q; want only the update after the refused batch", d)
	}
}

// TestBatchTopicCheckedPerTopic: a batch's topic is checked once however
// many of its updates repeat it, and any other topic is still checked: a
// topic in the hub's reserved namespace or an invalid one after a run of
// good updates refuses the batch at its index, and nothing is stored.
func TestBatchTopicCheckedPerTopic(t *testing.T) {
	th := newTestHub(t, ssetest.HTTP1, nil)
	sub := th.subscribe(topics("*"), http.Header{"Authorization": {"Bearer " + th.token(hub.Claims{Subscribe: []string{"*"}})}})
	good := strings.Repeat(`{"topic":"a","data":"x"}`+"\n", 3)
	for _, bad := range []string{`/.well-known/mercure/subscriptions/a`, `*`, "a\u0000b"} {
		body := good + `{"topic":["a",` + strconv.Quote(bad) + `],"data":"no"}` + "\n" + `{"topic":"a","data":"after"}` + "\n"
		resp, got := th.postBatch(th.publisher(), "", strings.NewReader(body))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Ssekit-Batch-Index") != "3" || !strings.HasPrefix(got, "update 3: ") {
			t.Errorf("batch with topic %q at 3: %d, index %q, %q; want 400, 3, \"update 3: …\"", bad, resp.StatusCode, resp.Header.Get("Ssekit-Batch-Index"), got)
		}
	}
	th.mustPublish("after", "a")
	if d := sub.nextData(); d != "after" {
		t.Fatalf("subscriber got %q; want only the update after the refused batches", d)
	}
}

// TestBatchClientStopsMidBatch: a publisher that stops sending in the
// middle of a batch (its connection or stream reset, or a body that never
// ends) stores nothing, and the hub goes on serving.
func TestBatchClientStopsMidBatch(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) { s.BodyTimeout = 300 * time.Millisecond })
		sub := th.subscribe(topics("a"), nil)
		line := `{"topic":"a","data":"never stored"}` + "\n"

		// Reset after two lines and half of a third.
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte(line + line + line[:10]))
			time.Sleep(50 * time.Millisecond) // let the hub read them
			pw.CloseWithError(errors.New("publisher crashed"))
		}()
		req, _ := http.NewRequest("POST", th.http.URL+hub.BatchPath, pr)
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", "Bearer "+th.publisher())
		if resp, err := th.http.Client().Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("a batch cut short was acknowledged")
			}
		}

		// A body that stops coming: 408 after BodyTimeout.
		pr, pw = io.Pipe()
		defer pw.Close()
		go pw.Write([]byte(line + line))
		resp, got := th.postBatch(th.publisher(), "", pr)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(got, "not received within") {
			t.Errorf("stalled batch: %d %q; want 408", resp.StatusCode, got)
		}

		th.mustPublish("after", "a")
		if d := sub.nextData(); d != "after" {
			t.Fatalf("subscriber got %q; want only the update after the cut batches", d)
		}
	})
}

// streamClient is a publisher on a streamed batch: lines written to w,
// acknowledgement lines read from acks.
type streamClient struct {
	t    *testing.T
	w    *io.PipeWriter
	acks *bufio.Scanner
	resp *http.Response
}

func (th *testHub) openStream(t *testing.T, token string) *streamClient {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", th.http.URL+hub.BatchPath+"?stream=1", pr)
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := th.head(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Close(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	return &streamClient{t: t, w: pw, acks: bufio.NewScanner(resp.Body), resp: resp}
}

func (c *streamClient) send(lines ...string) {
	c.t.Helper()
	if _, err := io.WriteString(c.w, strings.Join(lines, "\n")+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

// ack is one line the hub answers a stream with.
type ack struct {
	IDs    []string `json:"ids"`
	Count  *int     `json:"count"`
	Index  *int     `json:"index"`
	Status int      `json:"status"`
	Error  string   `json:"error"`
}

func (c *streamClient) next() ack {
	c.t.Helper()
	if !c.acks.Scan() {
		c.t.Fatalf("stream ended (%v) while waiting for an acknowledgement", c.acks.Err())
	}
	var a ack
	if err := json.Unmarshal(c.acks.Bytes(), &a); err != nil {
		c.t.Fatalf("acknowledgement %q: %v", c.acks.Text(), err)
	}
	return a
}

// ids reads acknowledgements until n ids have come.
func (c *streamClient) ids(n int) []string {
	c.t.Helper()
	var ids []string
	for len(ids) < n {
		a := c.next()
		if a.IDs == nil {
			c.t.Fatalf("got %+v; want ids (%d of %d so far)", a, len(ids), n)
		}
		ids = append(ids, a.IDs...)
	}
	return ids
}

// TestBatchStream: a streamed body is acknowledged as it arrives, while
// the publisher is still sending, and ends with the count.
func TestBatchStream(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		sub := th.subscribe(topics("a"), nil)
		c := th.openStream(t, th.publisher())
		c.send(`{"topic":"a","data":"1","id":"s1"}`)
		if got := c.ids(1); !slices.Equal(got, []string{"s1"}) {
			t.Fatalf("first acknowledgement %v; want [s1]", got)
		}
		if d := sub.nextData(); d != "1" {
			t.Fatalf("subscriber got %q; want 1", d)
		}
		c.send(`{"topic":"a","data":"2","id":"s2"}`, "", `{"topic":"a","data":"3","id":"s3"}`)
		if got := c.ids(2); !slices.Equal(got, []string{"s2", "s3"}) {
			t.Fatalf("acknowledgements %v; want [s2 s3]", got)
		}
		c.w.Close()
		if a := c.next(); a.Count == nil || *a.Count != 3 {
			t.Fatalf("last line %+v; want count 3", a)
		}
		for _, want := range []string{"2", "3"} {
			if d := sub.nextData(); d != want {
				t.Fatalf("subscriber got %q; want %q", d, want)
			}
		}
	})
}

// TestBatchStreamRefusal: a refused line ends the stream with its status,
// reason and index; what came before it is acknowledged and stored, it and
// what follows are not.
func TestBatchStreamRefusal(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		sub := th.subscribe(topics("*"), http.Header{"Authorization": {"Bearer " + th.token(hub.Claims{Subscribe: []string{"*"}})}})
		c := th.openStream(t, th.token(hub.Claims{Publish: []string{"a"}}))
		c.send(`{"topic":"a","data":"ok","id":"k1"}`)
		c.ids(1)
		c.send(`{"topic":"a","data":"ok too","id":"k2"}`+"\n"+`{"topic":"secret","data":"no"}`, `{"topic":"a","data":"after"}`)
		a := c.next()
		if a.IDs != nil {
			if !slices.Equal(a.IDs, []string{"k2"}) {
				t.Fatalf("acknowledgement %v; want [k2]", a.IDs)
			}
			a = c.next()
		}
		if a.Index == nil || *a.Index != 2 || a.Status != http.StatusForbidden || !strings.Contains(a.Error, "may not publish") {
			t.Fatalf("last line %+v; want index 2, status 403, may not publish", a)
		}
		for _, want := range []string{"ok", "ok too"} {
			if d := sub.nextData(); d != want {
				t.Fatalf("subscriber got %q; want %q", d, want)
			}
		}
		th.mustPublish("sentinel", "a")
		if d := sub.nextData(); d != "sentinel" {
			t.Fatalf("subscriber got %q after the refusal; want only what was acknowledged", d)
		}
	})
}

// TestBatchStreamCut: a stream cut in the middle keeps what was
// acknowledged and stores nothing else.
func TestBatchStreamCut(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, nil)
		sub := th.subscribe(topics("a"), nil)
		c := th.openStream(t, th.publisher())
		c.send(`{"topic":"a","data":"acknowledged"}`)
		c.ids(1)
		io.WriteString(c.w, `{"topic":"a","data":"cut`)
		time.Sleep(50 * time.Millisecond) // let the hub read it
		c.w.CloseWithError(errors.New("publisher crashed"))
		if d := sub.nextData(); d != "acknowledged" {
			t.Fatalf("subscriber got %q; want the acknowledged update", d)
		}
		th.mustPublish("sentinel", "a")
		if d := sub.nextData(); d != "sentinel" {
			t.Fatalf("subscriber got %q; want nothing unacknowledged", d)
		}
	})
}

// TestBatchStreamKeepAliveAndGroupRefusal: empty lines keep an idle
// stream open past BodyTimeout; a group refused for one of its updates
// (an id named twice) still stores and acknowledges the updates before
// it, and the error names the first one not stored.
func TestBatchStreamKeepAliveAndGroupRefusal(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th := newTestHub(t, proto, func(_ *hub.Config, s *server.Config) { s.BodyTimeout = 300 * time.Millisecond })
		c := th.openStream(t, th.publisher())
		c.send(`{"topic":"a","id":"first"}`)
		c.ids(1)
		for range 6 { // 600 ms idle, twice the body timeout
			time.Sleep(100 * time.Millisecond)
			c.send("")
		}
		c.send(`{"topic":"a","id":"after-idle"}`)
		if got := c.ids(1); !slices.Equal(got, []string{"after-idle"}) {
			t.Fatalf("after keep-alives: %v; want [after-idle]", got)
		}
		c.send(`{"topic":"a","id":"d0"}` + "\n" + `{"topic":"a","id":"d1"}` + "\n" + `{"topic":"a","id":"d1"}`)
		var stored []string
		a := c.next()
		for a.IDs != nil {
			stored = append(stored, a.IDs...)
			a = c.next()
		}
		if !slices.Equal(stored, []string{"d0", "d1"}) || a.Index == nil || *a.Index != 4 || a.Status != http.StatusConflict {
			t.Fatalf("acknowledged %v, then %+v; want [d0 d1] and a 409 at index 4", stored, a)
		}
	})
}
