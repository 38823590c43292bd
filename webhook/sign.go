package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The signature scheme (docs/hooks.md). Each delivery carries:
//
//	Ssekit-Webhook-Id:        the event's id (the same on every retry)
//	Ssekit-Webhook-Timestamp: seconds since the Unix epoch, when sent
//	Ssekit-Webhook-Signature: v1=HEX[,v1=HEX…]
//
// where HEX is the lowercase hex of HMAC-SHA256(secret, timestamp + "." +
// body), one per configured secret (several while a secret is rotated). A
// receiver recomputes it over the raw body, compares in constant time,
// and refuses timestamps outside its tolerance, so a captured delivery
// cannot be replayed later; the id lets it drop a duplicate.
const (
	HeaderID        = "Ssekit-Webhook-Id"
	HeaderTimestamp = "Ssekit-Webhook-Timestamp"
	HeaderSignature = "Ssekit-Webhook-Signature"
	// DefaultTolerance is Verify's default window around the timestamp.
	DefaultTolerance = 5 * time.Minute
)

// Sign returns the signature header's value for body sent at ts.
func Sign(ts time.Time, body []byte, secrets ...[]byte) string {
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = "v1=" + hex.EncodeToString(mac(s, ts.Unix(), body))
	}
	return strings.Join(sigs, ",")
}

func mac(secret []byte, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery's signature headers against body with secret:
// nil when one signature matches and the timestamp is within tolerance
// of now (zero tolerance: DefaultTolerance). Every other case is an error
// wrapping ErrBadSignature: missing headers, a forged or altered body, a
// replayed (too old) delivery.
func Verify(secret []byte, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	tsText, sig := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if tsText == "" || sig == "" {
		return fmt.Errorf("%w: missing %s or %s", ErrBadSignature, HeaderTimestamp, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not a number", ErrBadSignature, tsText)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s off by %s (tolerance %s): a replay or a wrong clock", ErrBadSignature, tsText, d.Round(time.Second), tolerance)
	}
	want := mac(secret, ts, body)
	for part := range strings.SplitSeq(sig, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		if got, err := hex.DecodeString(v); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrBadSignature)
}
