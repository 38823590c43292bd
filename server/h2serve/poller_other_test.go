//go:build !unix

package h2serve_test

import "github.com/ssekit/sse/server/h2serve"

func newTestPoller() h2serve.Poller { return nil }

func pollerArms(h2serve.Poller) int64 { return 0 }
