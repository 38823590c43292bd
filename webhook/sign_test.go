package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ssekit/sse/webhook"
)

// TestVerify: the helper accepts a genuine delivery (with any of the
// rotated secrets) and detects a forged, altered or replayed one.
func TestVerify(t *testing.T) {
	body := []byte(`{"id":"update:1","type":"update.published"}`)
	now := time.Unix(1_800_000_000, 0)
	headers := func(ts time.Time, sig string) http.Header {
		h := http.Header{}
		h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(webhook.HeaderSignature, sig)
		return h
	}
	old := []byte("the-old-secret-0123456789")
	good := headers(now, webhook.Sign(now, body, secret, old))
	if err := webhook.Verify(secret, good, body, 0, now.Add(time.Minute)); err != nil {
		t.Errorf("genuine: %v", err)
	}
	if err := webhook.Verify(old, good, body, 0, now); err != nil {
		t.Errorf("genuine, with the secret being rotated out: %v", err)
	}
	for _, tc := range []struct {
		name string
		h    http.Header
		body []byte
		now  time.Time
	}{
		{"altered body", good, []byte(`{"id":"update:2"}`), now},
		{"other secret", headers(now, webhook.Sign(now, body, []byte("not-the-secret-0123456789"))), body, now},
		{"replayed later", good, body, now.Add(10 * time.Minute)},
		{"timestamp changed", headers(now.Add(time.Second), webhook.Sign(now, body, secret)), body, now},
		{"no headers", http.Header{}, body, now},
		{"garbage", headers(now, "v1=zz,v0=00"), body, now},
	} {
		if err := webhook.Verify(secret, tc.h, tc.body, 0, tc.now); !errors.Is(err, webhook.ErrBadSignature) {
			t.Errorf("%s: %v; want ErrBadSignature", tc.name, err)
		}
	}
}
