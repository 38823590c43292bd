// Package testhub builds the hub that package tests run against: a real
// hub.Hub on a memory store behind a real server.Server, verifying HS256
// tokens signed with Secret, anonymous subscribers allowed. The server and
// command tests use it, so that there is one way to make a test hub; a
// test that needs more sets it in configure.
package testhub

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/server"
)

// Secret is the HS256 key the test hub verifies tokens with.
const Secret = "0123456789abcdef0123456789abcdef-test-secret"

// Hub is a test hub. Server is its http.Handler; serve it with
// ssetest.NewServer, or call it directly.
type Hub struct {
	Hub    *hub.Hub
	Server *server.Server
	// Store is the hub's store: the one configure set, or a memory store.
	Store hub.Store
	// Key signs tokens the hub accepts (Token does).
	Key *jwtauth.Key

	close func()
}

// Close shuts the server down (ending its streams) and closes the store,
// once; the test's end does it too. A test serving the hub over HTTP
// registers it after starting the HTTP server, so that the streams end
// before that server waits for its requests.
func (th *Hub) Close() { th.close() }

// New builds a test hub; configure, when not nil, may change either
// config before the hub and the server are made (set hcfg.Store to use
// another store). Everything is shut down and closed when the test ends.
func New(t testing.TB, configure func(hcfg *hub.Config, scfg *server.Config)) *Hub {
	t.Helper()
	key, err := jwtauth.NewKey("HS256", []byte(Secret))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := jwtauth.New(jwtauth.Config{PublisherKey: key})
	if err != nil {
		t.Fatal(err)
	}
	hcfg := hub.Config{}
	scfg := server.Config{Auth: auth, AllowAnonymous: true, Heartbeat: time.Minute}
	if configure != nil {
		configure(&hcfg, &scfg)
	}
	if hcfg.Store == nil {
		hcfg.Store = hub.NewMemoryStore(hub.MemoryStoreConfig{})
	}
	h, err := hub.New(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	scfg.Hub = h
	srv, err := server.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	th := &Hub{Hub: h, Server: srv, Store: hcfg.Store, Key: key}
	th.close = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hcfg.Store.Close(ctx)
	})
	t.Cleanup(th.close)
	return th
}

// Token returns a token for c, signed with Key.
func (th *Hub) Token(t testing.TB, c hub.Claims) string {
	t.Helper()
	tok, err := jwtauth.Sign(th.Key, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
