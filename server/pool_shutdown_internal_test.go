package server

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ssekit/sse/hub"
)

// TestTakeOverAfterShutdownEnds: a subscriber whose connection reaches the
// writer pool after Shutdown has taken its last look (the hub ended it
// while its headers were being sent) is ended at once, not kept open
// with nothing left to write or close it.
func TestTakeOverAfterShutdownEnds(t *testing.T) {
	h, err := hub.New(hub.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Hub: h, AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	c := &subConn{}
	sub, _, err := h.Subscribe(context.Background(), hub.SubscribeRequest{
		Selectors: []string{"late"}, RemoteAddr: "127.0.0.1", Notify: c.notify,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.sub = sub
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	served, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.pool.add(c, served)

	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d bytes, %v; want the connection closed (EOF)", n, err)
	}
	if !c.ended.Load() {
		t.Error("the late subscriber's connection is not marked ended")
	}
}
