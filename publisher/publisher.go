// Package publisher is a Go client for publishing to an ssekit hub in
// batches: updates handed to Publish by any number of goroutines are sent
// together, in one request to the hub's batch route
// (/.well-known/mercure/batch, docs/publishing.md), when MaxBatch of them
// are waiting or the oldest has waited MaxDelay. Each Publish returns once
// the hub has stored its update (for bolt: committed to disk), with the
// update's id.
//
// A batch is all or none on the hub. When the hub refuses a batch because
// of one update (a forbidden topic, a duplicate id), that update's Publish
// gets the reason and the others are sent again without it, so one bad
// update never fails its neighbours.
package publisher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssekit/sse/hub"
)

// Defaults of the zero Config fields.
const (
	DefaultMaxBatch      = 100
	DefaultMaxDelay      = 5 * time.Millisecond
	DefaultMaxBatchBytes = 1 << 20
)

// Errors of the package, to test with errors.Is.
var (
	// ErrClosed is returned by Publish after Close.
	ErrClosed = errors.New("publisher: closed")
	// ErrInvalidConfig is wrapped by New for a Config it cannot use.
	ErrInvalidConfig = errors.New("publisher: invalid config")
)

// Config configures a Publisher. HubURL is required.
type Config struct {
	// HubURL is the hub's Mercure endpoint, such as
	// "https://example.com/.well-known/mercure"; batches go to its
	// /batch route.
	HubURL string
	// Token is the publisher JWT sent as a Bearer token.
	Token string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// MaxBatch is the most updates in one request: a batch is sent as soon
	// as that many wait. Zero means DefaultMaxBatch (100). Keep it at or
	// below the hub's limit (1,000 by default).
	MaxBatch int
	// MaxDelay is the longest an update waits for others before its batch
	// is sent. Zero means DefaultMaxDelay (5 ms); a negative value sends at
	// once whatever is waiting.
	MaxDelay time.Duration
	// MaxBatchBytes bounds the encoded size of one batch. Zero means
	// DefaultMaxBatchBytes (1 MiB), a quarter of the hub's default limit.
	MaxBatchBytes int
}

// Update is one update to publish. Topics needs at least one topic; the
// others may be left empty (the hub then makes the id).
type Update struct {
	Topics  []string
	ID      string
	Type    string
	Data    string
	Retry   time.Duration // sent in whole milliseconds; 0: none
	Private bool
}

// Error is the hub's refusal of an update or a batch: the HTTP status and
// the hub's one-line reason. Index is the update's position in the batch
// the hub named (-1 when the refusal concerned the whole request).
type Error struct {
	Status int
	Reason string
	Index  int
}

func (e *Error) Error() string {
	return "publisher: the hub answered " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status) + ": " + e.Reason
}

// AppendLine appends u as one line of a batch body (JSON and a newline).
func AppendLine(dst []byte, u *Update) ([]byte, error) {
	l := line{Topic: u.Topics, ID: u.ID, Type: u.Type, Data: u.Data, Private: u.Private}
	if u.Retry > 0 {
		l.Retry = u.Retry.Milliseconds()
	}
	b, err := json.Marshal(&l)
	if err != nil {
		return dst, err
	}
	dst = append(dst, b...)
	return append(dst, '\n'), nil
}

// line is the JSON form of an update in a batch body.
type line struct {
	Topic   []string `json:"topic"`
	ID      string   `json:"id,omitempty"`
	Type    string   `json:"type,omitempty"`
	Data    string   `json:"data,omitempty"`
	Retry   int64    `json:"retry,omitempty"`
	Private bool     `json:"private,omitempty"`
}

// Publisher batches updates to one hub. Create it with New; it is safe for
// concurrent use.
type Publisher struct {
	cfg      Config
	batchURL string
	client   *http.Client

	queue chan *call
	done  chan struct{} // closed when the loop has returned

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
}

// call is one Publish waiting for its batch.
type call struct {
	u    *Update
	line []byte
	id   string
	err  error
	done chan struct{}
}

// New returns a Publisher sending to cfg.HubURL.
func New(cfg Config) (*Publisher, error) {
	if !strings.HasPrefix(cfg.HubURL, "http://") && !strings.HasPrefix(cfg.HubURL, "https://") {
		return nil, fmt.Errorf("%w: HubURL %q is not an http:// or https:// URL", ErrInvalidConfig, cfg.HubURL)
	}
	if cfg.MaxBatch < 0 || cfg.MaxBatchBytes < 0 {
		return nil, fmt.Errorf("%w: negative MaxBatch or MaxBatchBytes", ErrInvalidConfig)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	cfg.MaxBatch = min(cfg.MaxBatch, hub.MaxBatchUpdates)
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	p := &Publisher{
		cfg:      cfg,
		batchURL: BatchURL(cfg.HubURL),
		client:   cfg.Client,
		queue:    make(chan *call, cfg.MaxBatch),
		done:     make(chan struct{}),
	}
	if p.client == nil {
		p.client = http.DefaultClient
	}
	go p.loop()
	return p, nil
}

// BatchURL returns the batch route of the hub whose Mercure endpoint is
// hubURL.
func BatchURL(hubURL string) string {
	base, query, _ := strings.Cut(hubURL, "?")
	u := strings.TrimSuffix(base, "/") + hub.BatchPath[len(hub.Path):]
	if query != "" {
		u += "?" + query
	}
	return u
}

// Publish hands u to the next batch and returns its id once the hub has
// stored it, or why not: an *Error for the hub's refusal, ctx's error when
// ctx ends first (the update may still be stored then), ErrClosed.
func (p *Publisher) Publish(ctx context.Context, u Update) (string, error) {
	b, err := AppendLine(nil, &u)
	if err != nil {
		return "", fmt.Errorf("publisher: %w", err)
	}
	c := &call{u: &u, line: b, done: make(chan struct{})}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return "", ErrClosed
	}
	select {
	case p.queue <- c:
	case <-ctx.Done():
		p.mu.RUnlock()
		return "", ctx.Err()
	}
	p.mu.RUnlock()
	select {
	case <-c.done:
		return c.id, c.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Close sends what is waiting, waits for it (until ctx ends) and stops the
// publisher; later Publish calls return ErrClosed.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop collects calls into batches and sends them, one request at a time,
// so updates are stored in the order Publish received them.
func (p *Publisher) loop() {
	defer close(p.done)
	var (
		batch []*call
		size  int
		timer *time.Timer
		fire  <-chan time.Time
	)
	flush := func() {
		if timer != nil {
			timer.Stop()
		}
		fire = nil
		if len(batch) > 0 {
			p.send(batch)
		}
		batch, size = nil, 0
	}
	for {
		select {
		case c, ok := <-p.queue:
			if !ok {
				flush()
				return
			}
			if len(batch) > 0 && size+len(c.line) > p.cfg.MaxBatchBytes {
				flush()
			}
			batch = append(batch, c)
			size += len(c.line)
			if len(batch) >= p.cfg.MaxBatch || p.cfg.MaxDelay < 0 && len(p.queue) == 0 {
				flush()
			} else if len(batch) == 1 {
				if timer == nil {
					timer = time.NewTimer(p.cfg.MaxDelay)
				} else {
					timer.Reset(p.cfg.MaxDelay)
				}
				fire = timer.C
			}
		case <-fire:
			flush()
		}
	}
}

// sendTimeout bounds one batch request.
const sendTimeout = 30 * time.Second

// send posts batch; an update the hub refuses gets the reason and the
// rest is sent again without it.
func (p *Publisher) send(batch []*call) {
	for len(batch) > 0 {
		ids, err := p.post(batch)
		if err == nil {
			for i, c := range batch {
				c.id = ids[i]
				close(c.done)
			}
			return
		}
		var he *Error
		if errors.As(err, &he) && he.Index >= 0 && he.Index < len(batch) {
			bad := batch[he.Index]
			reason := strings.TrimPrefix(he.Reason, "update "+strconv.Itoa(he.Index)+": ")
			bad.err = &Error{Status: he.Status, Reason: reason, Index: -1}
			close(bad.done)
			batch = append(batch[:he.Index:he.Index], batch[he.Index+1:]...)
			continue
		}
		for _, c := range batch {
			c.err = err
			close(c.done)
		}
		return
	}
}

// post sends one batch request and returns the ids the hub answered.
func (p *Publisher) post(batch []*call) ([]string, error) {
	var body bytes.Buffer
	for _, c := range batch {
		body.Write(c.line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.batchURL, &body)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if p.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20+64<<10))
	if err != nil {
		return nil, fmt.Errorf("publisher: reading the hub's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode, Reason: strings.TrimSpace(string(b)), Index: -1}
		if i, err := strconv.Atoi(resp.Header.Get("Ssekit-Batch-Index")); err == nil {
			e.Index = i
		}
		return nil, e
	}
	var ack struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(b, &ack); err != nil || len(ack.IDs) != len(batch) {
		return nil, fmt.Errorf("publisher: %s answered 200 without the batch's %d ids: is it an ssekit hub?", p.batchURL, len(batch))
	}
	return ack.IDs, nil
}
