package publisher_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/hub/hubtest"
	"github.com/ssekit/sse/internal/testhub"
	"github.com/ssekit/sse/publisher"
	"github.com/ssekit/sse/ssetest"
)

// newHub serves a test hub and counts the batch requests it gets.
func newHub(t *testing.T, proto string) (*testhub.Hub, *httptest.Server, *atomic.Int64) {
	t.Helper()
	th := testhub.New(t, nil)
	var batches atomic.Int64
	srv := ssetest.NewServer(t, proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == hub.BatchPath {
			batches.Add(1)
		}
		th.Server.ServeHTTP(w, r)
	}))
	t.Cleanup(th.Close)
	return th, srv, &batches
}

func newPublisher(t *testing.T, cfg publisher.Config) *publisher.Publisher {
	t.Helper()
	p, err := publisher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// TestPublishBatches: updates published concurrently are sent in a few
// requests, each stored once with the id Publish returned.
func TestPublishBatches(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		th, srv, batches := newHub(t, proto)
		p := newPublisher(t, publisher.Config{
			HubURL: srv.URL + hub.Path, Client: srv.Client(), Token: th.Token(t, hub.Claims{Publish: []string{"*"}}),
			MaxBatch: 50, MaxDelay: 20 * time.Millisecond,
		})
		const n = 300
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				id, err := p.Publish(context.Background(), publisher.Update{Topics: []string{"t"}, Data: fmt.Sprint(i)})
				if err != nil {
					t.Errorf("Publish %d: %v", i, err)
				}
				ids[i] = id
			})
		}
		wg.Wait()
		seen := map[string]bool{}
		for _, id := range ids {
			if id == "" || seen[id] {
				t.Fatalf("id %q empty or twice", id)
			}
			seen[id] = true
		}
		stored := 0
		if _, _, err := hubtest.AfterAll(context.Background(), th.Store, "", 0, func(u *hub.Update) bool {
			if !seen[u.ID] {
				t.Errorf("stored %s, which no Publish returned", u.ID)
			}
			stored++
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if stored != n {
			t.Errorf("stored %d updates; want %d", stored, n)
		}
		if got := batches.Load(); got >= n/2 {
			t.Errorf("%d requests for %d updates; want them batched", got, n)
		}
	})
}

// TestPublishRefusedUpdateAlone: the update the hub refuses gets the
// reason; the others of its batch are stored.
func TestPublishRefusedUpdateAlone(t *testing.T) {
	th, srv, _ := newHub(t, ssetest.HTTP1)
	p := newPublisher(t, publisher.Config{
		HubURL: srv.URL + hub.Path, Client: srv.Client(), Token: th.Token(t, hub.Claims{Publish: []string{"ok"}}),
		MaxBatch: 10, MaxDelay: time.Second,
	})
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			topic := "ok"
			if i == 4 {
				topic = "forbidden"
			}
			_, errs[i] = p.Publish(context.Background(), publisher.Update{Topics: []string{topic}})
		})
	}
	wg.Wait()
	refused := 0
	for _, err := range errs {
		var pe *publisher.Error
		switch {
		case err == nil:
		case errors.As(err, &pe) && pe.Status == http.StatusForbidden:
			refused++
		default:
			t.Errorf("Publish: %v; want nil or a 403", err)
		}
	}
	if refused != 1 {
		t.Errorf("%d refused; want exactly the forbidden one", refused)
	}
	if n := th.Store.(*hub.MemoryStore).Len(); n != 9 {
		t.Errorf("stored %d; want the 9 allowed", n)
	}
}

// TestPublishAfterClose: Close sends what waits; Publish then fails.
func TestPublishAfterClose(t *testing.T) {
	th, srv, _ := newHub(t, ssetest.HTTP1)
	p := newPublisher(t, publisher.Config{HubURL: srv.URL + hub.Path, Client: srv.Client(), Token: th.Token(t, hub.Claims{Publish: []string{"*"}}), MaxDelay: time.Hour})
	done := make(chan error, 1)
	go func() {
		_, err := p.Publish(context.Background(), publisher.Update{Topics: []string{"t"}})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it queue: Close must send it, not drop it
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	switch err := <-done; {
	case errors.Is(err, publisher.ErrClosed): // it came after Close after all (a loaded machine)
	case err != nil:
		t.Errorf("Publish before Close: %v; want it sent", err)
	case th.Store.(*hub.MemoryStore).Len() != 1:
		t.Errorf("the update queued before Close is not stored")
	}
	if _, err := p.Publish(context.Background(), publisher.Update{Topics: []string{"t"}}); !errors.Is(err, publisher.ErrClosed) {
		t.Errorf("Publish after Close: %v; want ErrClosed", err)
	}
	if _, err := publisher.New(publisher.Config{HubURL: "ftp://x"}); !errors.Is(err, publisher.ErrInvalidConfig) {
		t.Errorf("New with an ftp URL: %v; want ErrInvalidConfig", err)
	}
}
