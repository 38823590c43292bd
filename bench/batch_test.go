package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/ssetest"
)

// startHub serves a real ssekit hub (memory store) and returns a Config
// aimed at it with a publisher token.
func startHub(t *testing.T) Config {
	t.Helper()
	th := testhub.New(t, nil)
	srv := ssetest.NewServer(t, ssetest.HTTP1, th.Server)
	t.Cleanup(th.Close)
	return Config{
		Hub:            srv.URL + hub.Path,
		PublisherToken: th.Token(t, hub.Claims{Publish: []string{"*"}}),
		Drain:          time.Second,
	}
}

// TestRunBatches: batched publishes on the hub's batch route reach every
// hot subscriber once and in order, the last batch short, and the publish
// latency counts requests, not updates.
func TestRunBatches(t *testing.T) {
	cfg := startHub(t)
	cfg.Subscribers = 4
	cfg.AllActive = true
	cfg.HotTopics = 2
	cfg.Updates = 95
	cfg.Publishers = 3
	cfg.Batch = 10
	rep := run(t, cfg)
	if rep.Published != 95 || rep.PublishErrors != 0 || rep.Batch != 10 {
		t.Fatalf("published %d, errors %d (%s), batch %d; want 95, 0, 10", rep.Published, rep.PublishErrors, rep.FirstPublishError, rep.Batch)
	}
	// Publisher p has ceil((95-p)/3) updates: 32, 32, 31, so 4+4+4 requests.
	if rep.PublishLatency.Count != 12 {
		t.Errorf("publish latencies %d; want 12 (requests)", rep.PublishLatency.Count)
	}
	if rep.Expected != 95*2 || rep.Delivered != 95*2 || rep.Lost != 0 || rep.Duplicated != 0 || rep.OutOfOrder != 0 || rep.Malformed != 0 {
		t.Errorf("expected %d delivered %d lost %d dup %d out of order %d malformed %d; want 190, 190, 0, 0, 0, 0",
			rep.Expected, rep.Delivered, rep.Lost, rep.Duplicated, rep.OutOfOrder, rep.Malformed)
	}
}

// TestRunBatchRefused: a batch the hub refuses (no token) ends the run
// with ErrPublishRefused, as a refused single publish does.
func TestRunBatchRefused(t *testing.T) {
	cfg := startHub(t)
	cfg.PublisherToken = ""
	cfg.Updates = 20
	cfg.Batch = 5
	_, err := Run(t.Context(), cfg)
	if !errors.Is(err, ErrPublishRefused) {
		t.Fatalf("Run: %v; want ErrPublishRefused", err)
	}
}

func TestConfigInvalidBatch(t *testing.T) {
	for _, b := range []int{-1, MaxBatch + 1} {
		if _, err := (Config{Batch: b}).prepare(t.Context()); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Batch %d: %v; want ErrInvalidConfig", b, err)
		}
	}
}
