package natsjs

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// A forming cluster answers stream creation with errors that pass once
// it has formed; a hub that gave up on them exited at start (the flaky
// three-node starts). Real refusals still end Open at once.
func TestStreamNotReadyYet(t *testing.T) {
	apiErr := func(code int, errCode jetstream.ErrorCode) error {
		return fmt.Errorf("create: %w", &jetstream.APIError{Code: code, ErrorCode: errCode, Description: "x"})
	}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"no connection", errors.New("nats: no responders"), true},
		{"no quorum", apiErr(503, 10008), true},
		{"timeout", apiErr(408, 0), true},
		{"no peers for placement yet", apiErr(400, 10005), true},
		{"created by another hub meanwhile", apiErr(400, jetstream.JSErrCodeStreamNameInUse), true},
		{"assigned by another hub, not running here yet", apiErr(404, jetstream.JSErrCodeStreamNotFound), true},
		{"bad request", apiErr(400, jetstream.JSErrCodeBadRequest), false},
		{"subjects overlap another stream", apiErr(400, 10065), false},
	} {
		if got := streamNotReadyYet(c.err); got != c.want {
			t.Errorf("%s: streamNotReadyYet = %v, want %v", c.name, got, c.want)
		}
	}
}
