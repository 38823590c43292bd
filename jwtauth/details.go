package jwtauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/ssekit/sse/hub"
)

// detailJSON is one authorization detail as the token writes it; members
// are decoded one by one so that a wrong JSON type is an error naming it.
type detailJSON struct {
	Type    json.RawMessage `json:"type"`
	Actions json.RawMessage `json:"actions"`
	Topics  json.RawMessage `json:"topics"`
	Payload json.RawMessage `json:"payload"`
}

type matcherJSON struct {
	Match     *string `json:"match"`
	MatchType *string `json:"match_type"`
}

// parseDetails reads an access token's authorization_details (RFC 9396):
// an array of objects, each with a string "type". Details of the Mercure
// type must have a non-empty "actions" array of strings (unknown actions
// grant nothing) and a non-empty "topics" array of {match, match_type}
// objects, and may have a "payload" object. Any fault refuses the whole
// token: there is no partial acceptance. validate, when set, is called on
// each matcher after its own checks.
func parseDetails(raw json.RawMessage, validate func(hub.TokenMatcher) error) ([]hub.AuthorizationDetail, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, errors.New("not an array")
	}
	if len(items) > MaxDetails {
		return nil, fmt.Errorf("%d details, at most %d", len(items), MaxDetails)
	}
	out := make([]hub.AuthorizationDetail, 0, len(items))
	topics := 0
	for i, item := range items {
		if !isObject(item) {
			return nil, fmt.Errorf("detail %d is not an object", i)
		}
		var dj detailJSON
		if err := json.Unmarshal(item, &dj); err != nil {
			return nil, fmt.Errorf("detail %d: %v", i, err)
		}
		var typ string
		if err := json.Unmarshal(dj.Type, &typ); err != nil || dj.Type == nil {
			return nil, fmt.Errorf("detail %d has no string type", i)
		}
		if typ != MercureDetailType {
			continue // another API's detail: not ours to judge
		}
		d, n, err := parseMercureDetail(dj, validate)
		if err != nil {
			return nil, fmt.Errorf("detail %d: %v", i, err)
		}
		if topics += n; topics > MaxDetailTopics {
			return nil, fmt.Errorf("more than %d topic matchers", MaxDetailTopics)
		}
		out = append(out, d)
	}
	return out, nil
}

func parseMercureDetail(dj detailJSON, validate func(hub.TokenMatcher) error) (hub.AuthorizationDetail, int, error) {
	var d hub.AuthorizationDetail
	var actions []json.RawMessage
	if err := json.Unmarshal(dj.Actions, &actions); err != nil || len(actions) == 0 {
		return d, 0, errors.New("actions must be a non-empty array")
	}
	for _, a := range actions {
		var s string
		if err := json.Unmarshal(a, &s); err != nil {
			return d, 0, errors.New("an action is not a string")
		}
		switch s {
		case "publish":
			d.Publish = true
		case "subscribe":
			d.Subscribe = true
		}
	}
	var topics []json.RawMessage
	if err := json.Unmarshal(dj.Topics, &topics); err != nil || len(topics) == 0 {
		return d, 0, errors.New("topics must be a non-empty array")
	}
	if len(topics) > MaxDetailTopics {
		return d, 0, fmt.Errorf("more than %d topic matchers", MaxDetailTopics)
	}
	d.Topics = make([]hub.TokenMatcher, 0, len(topics))
	for j, tj := range topics {
		if !isObject(tj) {
			return d, 0, fmt.Errorf("topic %d is not a {match, match_type} object", j)
		}
		var mj matcherJSON
		if err := json.Unmarshal(tj, &mj); err != nil {
			return d, 0, fmt.Errorf("topic %d: match and match_type must be strings", j)
		}
		m := hub.TokenMatcher{Type: "exact"}
		if mj.Match == nil || *mj.Match == "" {
			return d, 0, fmt.Errorf("topic %d has no match", j)
		}
		m.Match = *mj.Match
		if mj.MatchType != nil {
			m.Type = *mj.MatchType
		}
		if m.Type != "exact" && m.Type != "urlpattern" {
			return d, 0, fmt.Errorf("topic %d: unsupported match_type %q", j, truncate(m.Type))
		}
		if err := checkMatch(m.Match); err != nil {
			return d, 0, fmt.Errorf("topic %d: %v", j, err)
		}
		if validate != nil && m.Match != "*" {
			if err := validate(m); err != nil {
				return d, 0, fmt.Errorf("topic %d: invalid %s matcher", j, m.Type) // the compiler's text stays inside (CWE-209)
			}
		}
		d.Topics = append(d.Topics, m)
	}
	if dj.Payload != nil {
		if !isObject(dj.Payload) {
			return d, 0, errors.New("payload must be an object")
		}
		d.Payload = dj.Payload
	}
	return d, len(topics), nil
}

// checkMatch applies the draft's rule for every topic string: at most
// MaxMatchBytes of valid UTF-8 with no C0, DEL, C1 or format (Cf)
// character.
func checkMatch(s string) error {
	if len(s) > MaxMatchBytes {
		return fmt.Errorf("match longer than %d bytes", MaxMatchBytes)
	}
	if !utf8.ValidString(s) {
		return errors.New("match is not UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("match holds the control or format character %U", r)
		}
	}
	return nil
}

// isObject reports whether raw JSON is an object (after white space).
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '{'
}

// truncate keeps a token's string short in a reason.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
