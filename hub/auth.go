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

	// AccessToken reports a draft-08 (RFC 9068) access token: its grants
	// are Details, and Publish, Subscribe and Payload are empty. False for
	// a draft-07 token (the "mercure" claim).
	AccessToken bool
	// Details are an access token's Mercure authorization details, in the
	// token's order (the first subscribe detail matching a subscription
	// gives its payload). Details of other types are left out.
	Details []AuthorizationDetail
}

// AuthorizationDetail is one authorization detail of the Mercure type
// ("https://mercure.rocks/authorization-detail") of an access token: the
// actions it grants on the topics its matchers match.
type AuthorizationDetail struct {
	// Publish and Subscribe are its actions; actions the hub does not
	// know grant nothing and are not kept.
	Publish, Subscribe bool
	// Topics are its matchers (at least one).
	Topics []TokenMatcher
	// Payload is its "payload" JSON object, if any.
	Payload json.RawMessage
}

// TokenMatcher is one {"match", "match_type"} topic matcher of an access
// token. Match "*" matches every topic whatever the type.
type TokenMatcher struct {
	// Match is the pattern or exact topic.
	Match string
	// Type is "exact" (byte for byte) or "urlpattern" (a WHATWG URL
	// Pattern resolved against the hub URL); the token's default "exact"
	// is filled in.
	Type string
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
