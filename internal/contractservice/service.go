package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssekit/sse"
)

// capabilities are the optional parts of the suite our client passes.
var capabilities = []string{
	"bom",
	"comments",
	"headers",
	"last-event-id",
	"post",
	"report",
	"read-timeout",
	"restart",
	"event-type-listeners",
	"server-directed-shutdown-request",
}

const (
	// callbackTimeout bounds one callback to the harness.
	callbackTimeout = 10 * time.Second
	// closeTimeout bounds how long closing a stream waits for its
	// goroutine (which may be posting a callback).
	closeTimeout = 5 * time.Second
	// maxParamsSize bounds the JSON of a request to the service.
	maxParamsSize = 1 << 20
)

// createParams is the body of POST /: the stream a new client consumes.
type createParams struct {
	StreamURL      string            `json:"streamUrl"`
	CallbackURL    string            `json:"callbackUrl"`
	Tag            string            `json:"tag"`
	InitialDelayMS *int64            `json:"initialDelayMs"`
	ReadTimeoutMS  *int64            `json:"readTimeoutMs"`
	LastEventID    string            `json:"lastEventId"`
	Headers        map[string]string `json:"headers"`
	Method         string            `json:"method"`
	Body           string            `json:"body"`
}

// commandParams is the body of POST /streams/{id}.
type commandParams struct {
	Command string `json:"command"`
	Listen  *struct {
		Type string `json:"type"`
	} `json:"listen"`
}

// callback is one message to the harness.
type callback struct {
	Kind    string         `json:"kind"`
	Event   *callbackEvent `json:"event,omitempty"`
	Comment *string        `json:"comment,omitempty"`
	Error   string         `json:"error,omitempty"`
}

type callbackEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// service is the test service: it creates, commands and closes clients
// for the harness. Its zero value is not usable; see newService.
type service struct {
	log       *slog.Logger
	callbacks *http.Client
	mux       *http.ServeMux
	quit      chan struct{} // closed by DELETE /
	quitOnce  sync.Once

	mu      sync.Mutex
	nextID  int                      // guarded by mu
	streams map[string]*streamClient // guarded by mu
}

// newService returns the service's handler. Done reports DELETE /; Close
// stops every client.
func newService(log *slog.Logger) *service {
	s := &service{
		log:       log,
		callbacks: &http.Client{Timeout: callbackTimeout},
		mux:       http.NewServeMux(),
		quit:      make(chan struct{}),
		streams:   map[string]*streamClient{},
	}
	s.mux.HandleFunc("GET /{$}", s.status)
	s.mux.HandleFunc("DELETE /{$}", s.stop)
	s.mux.HandleFunc("POST /{$}", s.create)
	s.mux.HandleFunc("POST /streams/{id}", s.command)
	s.mux.HandleFunc("DELETE /streams/{id}", s.closeStream)
	return s
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Done is closed when the harness asked the service to exit.
func (s *service) Done() <-chan struct{} { return s.quit }

// Close stops every client.
func (s *service) Close() {
	s.mu.Lock()
	streams := s.streams
	s.streams = map[string]*streamClient{}
	s.mu.Unlock()
	for _, c := range streams {
		c.close()
	}
}

func (s *service) status(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"name": "ssekit", "capabilities": capabilities})
}

func (s *service) stop(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusNoContent)
	s.quitOnce.Do(func() { close(s.quit) })
}

func (s *service) create(w http.ResponseWriter, r *http.Request) {
	var p createParams
	if err := decodeJSON(w, r, &p); err != nil {
		http.Error(w, "contractservice: "+err.Error(), http.StatusBadRequest)
		return
	}
	req, client, err := p.build()
	if err != nil {
		http.Error(w, "contractservice: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.nextID++
	id := strconv.Itoa(s.nextID)
	c := newStreamClient(s.log.With("stream", id, "tag", p.Tag), s.callbacks, p.CallbackURL)
	s.streams[id] = c
	s.mu.Unlock()
	c.start(client, req)
	w.Header().Set("Location", absoluteURL(r, "/streams/"+id))
	w.WriteHeader(http.StatusCreated)
}

func (s *service) lookup(r *http.Request) *streamClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[r.PathValue("id")]
}

func (s *service) command(w http.ResponseWriter, r *http.Request) {
	c := s.lookup(r)
	if c == nil {
		http.Error(w, "contractservice: no such stream", http.StatusNotFound)
		return
	}
	var p commandParams
	if err := decodeJSON(w, r, &p); err != nil {
		http.Error(w, "contractservice: "+err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case p.Command == "restart":
		c.es.Restart()
	case p.Command == "listen" && p.Listen != nil:
		c.listen(p.Listen.Type)
	default:
		http.Error(w, fmt.Sprintf("contractservice: unknown command %q", p.Command), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *service) closeStream(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	id := r.PathValue("id")
	c := s.streams[id]
	delete(s.streams, id)
	s.mu.Unlock()
	if c == nil {
		http.Error(w, "contractservice: no such stream", http.StatusNotFound)
		return
	}
	c.close()
	w.WriteHeader(http.StatusNoContent)
}

// build checks the parameters and turns them into the request and the
// client configuration.
func (p *createParams) build() (*http.Request, *sse.Client, error) {
	if err := checkURL("streamUrl", p.StreamURL); err != nil {
		return nil, nil, err
	}
	if err := checkURL("callbackUrl", p.CallbackURL); err != nil {
		return nil, nil, err
	}
	c := &sse.Client{}
	if p.InitialDelayMS != nil {
		if *p.InitialDelayMS < 0 {
			return nil, nil, errors.New("negative initialDelayMs")
		}
		c.Retry = time.Duration(*p.InitialDelayMS) * time.Millisecond
		if c.Retry == 0 {
			c.Retry = -1 // reconnect at once
		}
	}
	if p.ReadTimeoutMS != nil {
		if *p.ReadTimeoutMS < 0 {
			return nil, nil, errors.New("negative readTimeoutMs")
		}
		c.ReadTimeout = time.Duration(*p.ReadTimeoutMS) * time.Millisecond
	}
	method := p.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if p.Body != "" {
		body = strings.NewReader(p.Body)
	}
	// The request's context is the stream's: the stream ends by Close.
	req, err := http.NewRequestWithContext(context.Background(), method, p.StreamURL, body)
	if err != nil {
		return nil, nil, err
	}
	for name, value := range p.Headers {
		req.Header.Set(name, value)
	}
	if p.LastEventID != "" {
		req.Header.Set("Last-Event-ID", p.LastEventID)
	}
	return req, c, nil
}

func checkURL(name, raw string) error {
	if raw == "" {
		return fmt.Errorf("missing %s", name)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q is not an http(s) URL", name, raw)
	}
	return nil
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxParamsSize))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad JSON: %w", err)
	}
	return nil
}

// absoluteURL makes path absolute on the host the request came to, so the
// harness need not resolve it.
func absoluteURL(r *http.Request, path string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + path
}

// streamClient is one client under test and the callbacks it sends.
type streamClient struct {
	log         *slog.Logger
	http        *http.Client
	callbackURL string
	es          *sse.EventSource
	done        chan struct{} // closed when the client's goroutine ended

	// Owned by the client's goroutine: the callbacks are numbered 1, 2, …
	// in the order they are sent.
	sent int

	mu        sync.Mutex
	listening map[string]bool // guarded by mu
}

func newStreamClient(log *slog.Logger, hc *http.Client, callbackURL string) *streamClient {
	return &streamClient{
		log:         log,
		http:        hc,
		callbackURL: strings.TrimSuffix(callbackURL, "/"),
		done:        make(chan struct{}),
		listening:   map[string]bool{},
	}
}

// start connects and reports, from one goroutine, every event, comment and
// error in stream order.
func (c *streamClient) start(client *sse.Client, req *http.Request) {
	client.OnComment = func(text string) {
		c.post(callback{Kind: "comment", Comment: &text})
	}
	client.OnRetry = func(err error, _ time.Duration) {
		// A restart is asked for, and a clean end is not a failure; the
		// rest (network errors, read timeouts) are reported.
		if err != sse.ErrRestart && err != io.EOF {
			c.post(callback{Kind: "error", Error: err.Error()})
		}
	}
	c.es = client.Connect(req)
	go c.run()
}

func (c *streamClient) run() {
	defer close(c.done)
	for ev, err := range c.es.Events() {
		if errors.Is(err, sse.ErrSourceClosed) {
			return
		}
		if err != nil {
			c.post(callback{Kind: "error", Error: err.Error()})
			return
		}
		if ev.Type != "message" && !c.listens(ev.Type) {
			continue // as a browser: no listener, no event
		}
		c.post(callback{Kind: "event", Event: &callbackEvent{Type: ev.Type, Data: ev.Data, ID: ev.ID}})
	}
}

// listen makes events of type t reported, as addEventListener(t) does.
// Events of type "message" always are (onmessage).
func (c *streamClient) listen(t string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listening[t] = true
}

func (c *streamClient) listens(t string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listening[t]
}

// close stops the client and waits (bounded) for its goroutine.
func (c *streamClient) close() {
	c.es.Close()
	select {
	case <-c.done:
	case <-time.After(closeTimeout):
		c.log.Warn("contractservice: client did not stop in time")
	}
}

// post sends one numbered callback. A failure is logged: the harness may
// be gone, and the stream goes on.
func (c *streamClient) post(msg callback) {
	c.sent++
	body, err := json.Marshal(msg)
	if err != nil {
		c.log.Error("contractservice: encoding callback", "err", err)
		return
	}
	url := c.callbackURL + "/" + strconv.Itoa(c.sent)
	resp, err := c.http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		c.log.Warn("contractservice: callback failed", "url", url, "err", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		c.log.Warn("contractservice: callback refused", "url", url, "status", resp.StatusCode)
	}
}
