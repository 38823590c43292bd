package jsclient_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssekit/sse/internal/browsertest"
	"github.com/ssekit/sse/internal/e2etest"
)

const wait = 30 * time.Second

// pageServer serves a blank page: the origin of an app that is not the hub.
func pageServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>app</title><body>app</body>")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// run evaluates JavaScript in the tab, awaiting a promise it returns.
func run(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](js, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("evaluating %s: %v", firstLine(js), err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + "…"
	}
	return s
}

// subscribeJS imports the module from moduleURL and opens an EventSource
// on streamURL with the options (a JavaScript object literal); the page
// keeps what it received in window.got ("id data"), its opens and errors.
func subscribeJS(moduleURL, streamURL, options string) string {
	return fmt.Sprintf(`(async () => {
		const m = await import(%q);
		window.got = []; window.opens = 0; window.errors = [];
		window.es = new m.EventSource(%q, %s);
		es.onopen = () => { window.opens++; };
		es.onerror = (e) => { window.errors.push(e.status + " " + e.message); };
		es.onmessage = (e) => { window.got.push(e.lastEventId + " " + e.data); };
	})()`, moduleURL, streamURL, options)
}

func publish(t *testing.T, h *e2etest.Hub, topic, id, data string) {
	t.Helper()
	form := url.Values{"topic": {topic}, "data": {data}, "id": {id}}
	if _, err := e2etest.Publish(t.Context(), e2etest.NewClient(t), h.URL(), publisherToken(t), form); err != nil {
		t.Fatal(err)
	}
}

func gotList(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return eval[[]string](t, ctx, `window.got`)
}

func wantList(prefix string, n int) []string {
	var w []string
	for i := 1; i <= n; i++ {
		w = append(w, fmt.Sprintf("%s-%d data %d", prefix, i, i))
	}
	return w
}

func publishN(t *testing.T, h *e2etest.Hub, topic, prefix string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		publish(t, h, topic, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("data %d", i))
	}
}

// TestBrowserImportsModuleFromHubWithBearer: a page of another origin
// imports /ssekit-client.js from the hub (CORS allows it) and receives
// updates with an Authorization header; the page has no cookie, and the
// hub takes no anonymous subscriber, so the header is what lets it in.
func TestBrowserImportsModuleFromHubWithBearer(t *testing.T) {
	page := pageServer(t)
	h := startHub(t, "--cors-origins", page.URL)
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL+"/")); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf(`{headers: async () => ({Authorization: "Bearer " + %q})}`, subscriberToken(t))
	run(t, ctx, subscribeJS(h.Base()+"/ssekit-client.js", h.URL()+"?topic=bearer", opts))
	browsertest.WaitFor(t, ctx, `window.opens === 1`, wait)
	publishN(t, h, "bearer", "b", 1, 3)
	browsertest.WaitFor(t, ctx, `window.got.length === 3`, wait)
	if got := gotList(t, ctx); fmt.Sprint(got) != fmt.Sprint(wantList("b", 3)) {
		t.Errorf("the page received %q; want %q", got, wantList("b", 3))
	}
	if c := eval[string](t, ctx, `document.cookie`); c != "" {
		t.Errorf("document.cookie = %q; want none", c)
	}
	// Without the header the hub refuses, and the reason reaches the page.
	run(t, ctx, subscribeJS(h.Base()+"/ssekit-client.js", h.URL()+"?topic=bearer", `{}`))
	browsertest.WaitFor(t, ctx, `window.errors.length === 1 && window.es.readyState === 2`, wait)
	if e := eval[[]string](t, ctx, `window.errors`); !strings.HasPrefix(e[0], "401 ") {
		t.Errorf("without a token: errors %q; want a 401", e)
	}
}

// flakyProxy is a reverse proxy in front of the hub that can answer 502
// and cut the streams it carries, as a load balancer does during a deploy.
type flakyProxy struct {
	*httptest.Server
	fail    atomic.Bool
	mu      sync.Mutex
	cancels map[*http.Request]context.CancelFunc // guarded by mu
}

func newFlakyProxy(t *testing.T, target string) *flakyProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{cancels: map[*http.Request]context.CancelFunc{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rp.Transport = &http.Transport{DisableKeepAlives: true}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.fail.Load() {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		p.mu.Lock()
		p.cancels[r] = cancel
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			delete(p.cancels, r)
			p.mu.Unlock()
			cancel()
		}()
		rp.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(p.Close)
	return p
}

// cut answers 502 from now on and ends every stream in progress.
func (p *flakyProxy) cut() {
	p.fail.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cancel := range p.cancels {
		cancel()
	}
}

// TestBrowserSurvivesProxy502AndHubRestart: behind a proxy that answers
// 502 for a while (where a native EventSource gives up for good), then
// across a kill -9 and restart of the hub, the page gets every update
// once, in order.
func TestBrowserSurvivesProxy502AndHubRestart(t *testing.T) {
	args := []string{"--data-dir", t.TempDir(), "--jwt-key", testSecret}
	h := ssekit.Start(t, e2etest.HubSpec{Args: args})
	proxy := newFlakyProxy(t, h.Base())
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(proxy.URL+"/healthz")); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf(`{headers: {Authorization: "Bearer " + %q}, retry: 200, maxRetry: 1000}`, subscriberToken(t))
	run(t, ctx, subscribeJS(proxy.URL+"/ssekit-client.js", proxy.URL+"/.well-known/mercure?topic=deploy", opts))
	// A native EventSource beside it, to show what the module fixes.
	run(t, ctx, `window.native = new EventSource("/.well-known/mercure?topic=deploy&authorization=`+subscriberToken(t)+`")`)
	browsertest.WaitFor(t, ctx, `window.opens === 1 && window.native.readyState === 1`, wait)
	publishN(t, h, "deploy", "d", 1, 1)
	browsertest.WaitFor(t, ctx, `window.got.length === 1`, wait)

	proxy.cut()
	browsertest.WaitFor(t, ctx, `window.errors.some((e) => e.startsWith("502 "))`, wait)
	publishN(t, h, "deploy", "d", 2, 2)
	browsertest.WaitFor(t, ctx, `window.native.readyState === 2`, wait) // the browser's gave up on the 502
	proxy.fail.Store(false)
	browsertest.WaitFor(t, ctx, `window.got.length === 2`, wait)

	h.Kill()
	browsertest.WaitFor(t, ctx, `window.es.readyState === 0`, wait)
	h = ssekit.Start(t, e2etest.HubSpec{Addr: h.Addr, Args: args})
	publishN(t, h, "deploy", "d", 3, 4)
	browsertest.WaitFor(t, ctx, `window.got.length >= 4`, wait)
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show
	if got := gotList(t, ctx); fmt.Sprint(got) != fmt.Sprint(wantList("d", 4)) {
		t.Errorf("the page received %q; want %q", got, wantList("d", 4))
	}
}

// subscribers reads the hub's ssekit_subscribers gauge.
func subscribers(t *testing.T, h *e2etest.Hub) int {
	t.Helper()
	res, err := h.Client.Get(h.Base() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ssekit_subscribers "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatal("no ssekit_subscribers in /metrics")
	return 0
}

// tabs opens n new tabs in the browser of ctx, each at pageURL; closing a
// tab is calling its cancel.
func tabs(t *testing.T, ctx context.Context, n int, pageURL string) ([]context.Context, []context.CancelFunc) {
	var ctxs []context.Context
	var cancels []context.CancelFunc
	for range n {
		tab, cancel := chromedp.NewContext(ctx)
		t.Cleanup(cancel)
		if err := chromedp.Do(tab, chromedp.Navigate(pageURL)); err != nil {
			t.Fatal(err)
		}
		ctxs = append(ctxs, tab)
		cancels = append(cancels, cancel)
	}
	return ctxs, cancels
}

// TestBrowserEightTabsShareOneConnection opens the same stream in eight
// tabs of one browser on an HTTP/1.1 hub, with each way of sharing: every
// tab receives every update while the hub counts at most two subscriber
// connections; then the tab that holds the connection closes, and the
// others go on without loss or duplicate.
func TestBrowserEightTabsShareOneConnection(t *testing.T) {
	for _, mode := range []string{"leader", "worker"} {
		t.Run(mode, func(t *testing.T) {
			h := startHub(t)
			ctx := browsertest.New(t)
			tabCtx, closeTab := tabs(t, ctx, 8, h.Base()+"/healthz")
			opts := fmt.Sprintf(`{share: %q, headers: {Authorization: "Bearer " + %q}, retry: 200, maxRetry: 1000}`, mode, subscriberToken(t))
			for _, tab := range tabCtx {
				run(t, tab, subscribeJS("/ssekit-client.js", h.URL()+"?topic=tabs", opts))
			}
			for _, tab := range tabCtx {
				browsertest.WaitFor(t, tab, `window.opens === 1 && window.es.readyState === 1`, wait)
				if got := eval[string](t, tab, `window.es.shareMode || ""`); got != mode {
					t.Fatalf("share mode %q; want %q", got, mode)
				}
			}
			publishN(t, h, "tabs", "s", 1, 5)
			for _, tab := range tabCtx {
				browsertest.WaitFor(t, tab, `window.got.length === 5`, wait)
			}
			if n := subscribers(t, h); n > 2 || n < 1 {
				t.Errorf("the hub counts %d subscribers for 8 tabs; want 1 or 2", n)
			}

			// Close the tab that holds the connection (in worker mode, the
			// first tab: the worker lives on in the others).
			leader := 0
			if mode == "leader" {
				leader = -1
				for i, tab := range tabCtx {
					if eval[bool](t, tab, `window.es.isLeader === true`) {
						leader = i
					}
				}
				if leader < 0 {
					t.Fatal("no tab leads")
				}
			}
			closeTab[leader]()
			rest := append(append([]context.Context{}, tabCtx[:leader]...), tabCtx[leader+1:]...)
			publishN(t, h, "tabs", "s", 6, 6) // while the lock passes on
			if mode == "leader" {
				deadline := time.Now().Add(wait)
				for !anyLeader(t, rest) {
					if time.Now().After(deadline) {
						t.Fatal("no tab took over the connection")
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			publishN(t, h, "tabs", "s", 7, 8)
			for _, tab := range rest {
				browsertest.WaitFor(t, tab, `window.got.length >= 8`, wait)
			}
			time.Sleep(300 * time.Millisecond) // room for a duplicate to show
			for i, tab := range rest {
				if got := gotList(t, tab); fmt.Sprint(got) != fmt.Sprint(wantList("s", 8)) {
					t.Errorf("tab %d received %q; want %q", i, got, wantList("s", 8))
				}
			}
			if n := subscribers(t, h); n > 2 {
				t.Errorf("after the handover the hub counts %d subscribers; want at most 2", n)
			}
		})
	}
}

func anyLeader(t *testing.T, tabs []context.Context) bool {
	for _, tab := range tabs {
		if eval[bool](t, tab, `window.es.isLeader === true`) {
			return true
		}
	}
	return false
}

// TestBrowserNativeEventSourceStallsSeventhTab is what the sharing fixes:
// eight tabs with the browser's own EventSource on an HTTP/1.1 hub; six
// connect, the seventh waits for a connection that never comes.
func TestBrowserNativeEventSourceStallsSeventhTab(t *testing.T) {
	page := pageServer(t)
	h := startHub(t, "--allow-anonymous", "--cors-origins", page.URL)
	ctx := browsertest.New(t)
	tabCtx, _ := tabs(t, ctx, 8, page.URL+"/")
	for _, tab := range tabCtx {
		run(t, tab, fmt.Sprintf(`window.got = []; window.es = new EventSource(%q);
			es.onmessage = (e) => window.got.push(e.data);`, h.URL()+"?topic=native"))
	}
	// Which six get a connection is the browser's choice: count them.
	states := func() (open []context.Context, waiting []context.Context) {
		for _, tab := range tabCtx {
			if eval[int](t, tab, `window.es.readyState`) == 1 {
				open = append(open, tab)
			} else {
				waiting = append(waiting, tab)
			}
		}
		return open, waiting
	}
	deadline := time.Now().Add(wait)
	open, waiting := states()
	for len(open) < 6 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		open, waiting = states()
	}
	if len(open) != 6 {
		t.Fatalf("%d tabs connected; want 6", len(open))
	}
	publish(t, h, "native", "n-1", "one")
	for _, tab := range open {
		browsertest.WaitFor(t, tab, `window.got.length === 1`, wait)
	}
	time.Sleep(time.Second) // the other two had every chance
	for i, tab := range waiting {
		state := eval[int](t, tab, `window.es.readyState`)
		got := eval[[]string](t, tab, `window.got`)
		if state != 0 || len(got) != 0 {
			t.Errorf("waiting tab %d: readyState %d, received %q; want CONNECTING (0) and nothing: the browser's six connections per host are taken", i, state, got)
		}
	}
	if n := subscribers(t, h); n != 6 {
		t.Errorf("the hub counts %d subscribers; want 6", n)
	}
}
