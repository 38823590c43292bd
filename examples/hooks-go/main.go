// Command hooks-go is an application in the hub's loop (docs/hooks.md):
// it answers the hub's auth hook by the session cookie and verifies the
// hub's webhooks with webhook.Verify.
//
//	WEBHOOK_SECRET=... go run ./examples/hooks-go 127.0.0.1:9000
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ssekit/sse/authhook"
	"github.com/ssekit/sse/webhook"
)

// app is the application: its sessions and what its webhooks received.
type app struct {
	secret   []byte
	sessions map[string]string // cookie value -> user

	mu       sync.Mutex
	seen     map[string]bool // event ids, to drop at-least-once duplicates
	received []string        // update ids, in order
}

func newApp(secret []byte) *app {
	return &app{secret: secret, seen: map[string]bool{},
		sessions: map[string]string{"s-alice": "alice", "s-admin": "admin"}}
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ssekit/auth", a.auth)
	mux.HandleFunc("POST /ssekit/webhook", a.webhook)
	mux.HandleFunc("GET /received", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		json.NewEncoder(w).Encode(a.received)
	})
	return mux
}

// auth answers the hub's auth hook.
func (a *app) auth(w http.ResponseWriter, r *http.Request) {
	var req authhook.Request
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	user, ok := a.sessions[req.Cookies["session"]]
	ans := authhook.Answer{Reason: "log in first"}
	switch {
	case !ok:
	case req.Action == "publish" && user == "admin":
		ans = authhook.Answer{Allow: true, PublishTopics: []string{"https://example.com/news"}}
	case req.Action == "publish":
		ans = authhook.Answer{Reason: "only admins publish"}
	default:
		payload, _ := json.Marshal(map[string]string{"user": user})
		ans = authhook.Answer{Allow: true, PrivateTopics: []string{"https://example.com/users/" + user}, Payload: payload, CacheTTL: 30}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ans)
}

// webhook receives the hub's events: the signature is checked over the
// raw body before anything else, duplicates are dropped by event id.
func (a *app) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		return
	}
	if err := webhook.Verify(a.secret, r.Header, body, 5*time.Minute, time.Now()); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.Update == nil {
		http.Error(w, "not an event", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.seen[ev.ID] {
		a.seen[ev.ID] = true
		a.received = append(a.received, ev.Update.ID)
	}
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	if len(os.Args) != 2 || os.Getenv("WEBHOOK_SECRET") == "" {
		fmt.Fprintln(os.Stderr, "usage: WEBHOOK_SECRET=... hooks-go HOST:PORT")
		os.Exit(2)
	}
	a := newApp([]byte(os.Getenv("WEBHOOK_SECRET")))
	log.Fatal((&http.Server{Addr: os.Args[1], Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}).ListenAndServe())
}
