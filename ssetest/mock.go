package ssetest

import (
	"net/http/httptest"
	"testing"

	"github.com/ssekit/sse/mock"
)

// A Mock is a running mock event-stream server (see package mock and
// docs/mock.md): the httptest server (its URL, its Client) and the mock
// (Served, to check what a client asked for).
type Mock struct {
	*httptest.Server
	Mock *mock.Server
}

// NewMock starts a mock over HTTP/1.1 serving script, the text of a mock
// script, and closes it when the test ends; a bad script fails the test
// with the script's line and why.
//
//	m := ssetest.NewMock(t, "> data: hello\n>\n")
//	es := (&sse.Client{}).Connect(req(m.URL))
func NewMock(t testing.TB, script string) *Mock {
	t.Helper()
	return NewMockProto(t, HTTP1, script, mock.Options{})
}

// NewMockProto is NewMock with the protocol (HTTP1 or HTTP2) and the
// mock's options.
func NewMockProto(t testing.TB, proto, script string, opts mock.Options) *Mock {
	t.Helper()
	s, err := mock.Parse(t.Name()+".mock", []byte(script))
	if err != nil {
		t.Fatal(err)
	}
	m := mock.New(s, opts)
	return &Mock{Server: NewServer(t, proto, m), Mock: m}
}
