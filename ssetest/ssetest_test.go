package ssetest_test

import (
	"net/http"
	"testing"

	"github.com/ssekit/sse/ssetest"
)

func TestNewServerSpeaksTheProtocol(t *testing.T) {
	ssetest.Run(t, func(t *testing.T, proto string) {
		major := 1
		if proto == ssetest.HTTP2 {
			major = 2
		}
		srv := ssetest.NewServer(t, proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor != major {
				t.Errorf("request over %s; want %s", r.Proto, proto)
			}
		}))
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != major {
			t.Errorf("response over %s; want %s", resp.Proto, proto)
		}
	})
}
