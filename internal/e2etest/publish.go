package e2etest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
)

// Token mints an HS256 token for claims with secret.
func Token(t testing.TB, secret string, c hub.Claims) string {
	t.Helper()
	key, err := jwtauth.NewKey("HS256", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwtauth.Sign(key, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// PublisherToken mints a token, signed with secret, that may publish to
// every topic.
func PublisherToken(t testing.TB, secret string) string {
	t.Helper()
	return Token(t, secret, hub.Claims{Publish: []string{"*"}})
}

// post posts one update form to hubURL with the bearer token tok.
func post(ctx context.Context, c *http.Client, hubURL, tok string, form url.Values) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hubURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// Publish posts one update and returns its id, or an error for a failed
// request or a status other than 200.
func Publish(ctx context.Context, c *http.Client, hubURL, tok string, form url.Values) (string, error) {
	resp, body, err := post(ctx, c, hubURL, tok, form)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("publish: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// PublishID publishes "data of ID" on topic with the given id, within 10
// seconds, and returns the status (0 when the request failed) and the
// answer: the body then "Retry-After=" and that header, or the request's
// error.
func (h *Hub) PublishID(tok, topic, id string) (int, string) {
	form := url.Values{"topic": {topic}, "id": {id}, "data": {"data of " + id}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, body, err := post(ctx, h.Client, h.URL(), tok, form)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, strings.TrimSpace(string(body)) + " Retry-After=" + resp.Header.Get("Retry-After")
}

// Attempt is one publish that was not acknowledged, and so retried.
type Attempt struct {
	ID     string
	Hub    string // the hub's address
	Status int    // 0: the request failed
	Answer string
}

func (a Attempt) String() string {
	return fmt.Sprintf("%s on %s: %d %s", a.ID, a.Hub, a.Status, a.Answer)
}

// Publisher publishes ids in order through a list of hubs, each attempt to
// the next hub in turn, retrying an id until it is acknowledged, and keeps
// account of what was acknowledged per topic, to be checked against what
// subscribers received. A 409 on a retry means an earlier attempt was
// stored without its answer arriving: that counts as acknowledged too
// (nobody else publishes these ids). It is safe for concurrent use.
type Publisher struct {
	hubs  []*Hub
	token string

	mu          sync.Mutex
	acked       map[string][]string // guarded by mu: topic → ids in publish order
	total       int                 // guarded by mu: acknowledged ids
	failures    []Attempt           // guarded by mu: answers that made it retry
	unavailable int                 // guarded by mu: 503 answers among failures
	next        int                 // guarded by mu: the hub of the next attempt
}

// NewPublisher returns a publisher through hubs with the token tok.
func NewPublisher(hubs []*Hub, tok string) *Publisher {
	return &Publisher{hubs: hubs, token: tok, acked: make(map[string][]string)}
}

// Token is the token the publisher publishes with.
func (p *Publisher) Token() string { return p.token }

// Publish publishes id on topic, retrying every 20 ms on the next hub until
// it is acknowledged, for up to Timeout. ctx is looked at between attempts
// only: an attempt under way is never cancelled, since an update stored
// without its answer would then be delivered without being accounted for.
func (p *Publisher) Publish(ctx context.Context, topic, id string) error {
	deadline := time.Now().Add(Timeout)
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.mu.Lock()
		h := p.hubs[p.next%len(p.hubs)]
		p.next++
		p.mu.Unlock()
		code, answer := h.PublishID(p.token, topic, id)
		p.mu.Lock()
		if code == http.StatusOK || (code == http.StatusConflict && attempt > 0) {
			p.acked[topic] = append(p.acked[topic], id)
			p.total++
			p.mu.Unlock()
			return nil
		}
		p.failures = append(p.failures, Attempt{ID: id, Hub: h.Addr, Status: code, Answer: answer})
		if code == http.StatusServiceUnavailable {
			p.unavailable++
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("publishing %s: not acknowledged in %v; last answer %d %s", id, Timeout, code, answer)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // as Retry-After, shortened
		}
	}
}

// MustPublish publishes as Publish does, and fails the test if the update
// is not acknowledged in time.
func (p *Publisher) MustPublish(t *testing.T, topic, id string) {
	t.Helper()
	if err := p.Publish(t.Context(), topic, id); err != nil {
		t.Fatal(err)
	}
}

// Acked returns the ids acknowledged on topic, in publish order.
func (p *Publisher) Acked(topic string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked[topic])
}

// AckedTotal returns how many ids were acknowledged on every topic.
func (p *Publisher) AckedTotal() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Unavailable returns how many attempts were answered 503.
func (p *Publisher) Unavailable() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unavailable
}

// Failures returns the attempts that were not acknowledged, in order.
func (p *Publisher) Failures() []Attempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.failures)
}
