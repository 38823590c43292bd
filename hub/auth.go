package hub

import (
	"encoding/json"
	"errors"
	"time"
)

// Claims is what a verified token grants, as the Mercure "mercure" claim
// says: the topic selectors its bearer may publish to, those for which it
// receives private updates, and a payload shown in the subscriptions API.
type Claims struct {
	Publish   []string
	Subscribe []string
	Payload   json.RawMessage
	// ExpiresAt is when the token stops being valid (zero: never); the
	// server closes a subscriber's stream then.
	ExpiresAt time.Time
	// Identity names the token whatever its spelling (jwtauth: a hash of
	// the header and claims its signature covers), so that per-token
	// limits such as the publish rate count one token once. Empty when the
	// Authenticator does not say.
	Identity string
}

// Authenticator verifies tokens. The jwtauth package implements it; the
// server calls it and maps its errors to HTTP statuses.
type Authenticator interface {
	// VerifyPublisher checks a publisher's token.
	VerifyPublisher(token string) (*Claims, error)
	// VerifySubscriber checks a subscriber's token.
	VerifySubscriber(token string) (*Claims, error)
}

// ErrUnauthorized is the error (wrapped with the reason) an Authenticator
// returns for a token it refuses: missing, malformed, badly signed, expired,
// or signed with an algorithm it does not accept.
var ErrUnauthorized = errors.New("hub: unauthorized")
