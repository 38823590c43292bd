// Package urlpattern matches Mercure draft-08 topics against WHATWG URL
// Patterns (https://urlpattern.spec.whatwg.org/), for match_urlpattern
// selectors and token grants. It wraps github.com/dunglas/go-urlpattern,
// the implementation Mercure itself uses, behind hub.Matcher, so the hub
// package stays free of outside imports.
//
// Patterns and topics are resolved against a base URL, the hub's own URL:
// a relative pattern such as "/.well-known/mercure/subscriptions/:t/:s"
// takes its protocol, host and port from the base, and a relative topic is
// resolved the same way before it is matched. Matching runs on Go's regexp
// package (RE2: time linear in the topic's length for a given pattern);
// patterns whose compiled size would not be linear in their length
// (counted repetition inside a regular-expression group, such as
// "(a{1000})") are refused, as are patterns over MaxPatternLength and the
// JavaScript-only features RE2 cannot compile (look-around,
// back-references).
package urlpattern

import (
	"errors"
	"fmt"

	"github.com/dunglas/go-urlpattern"

	"github.com/ssekit/sse/hub"
)

// MaxPatternLength is the longest pattern accepted, in bytes: 4 KiB, as
// Mercure caps it.
const MaxPatternLength = 4096

// Errors of New, to test with errors.Is; each is answered 400 with its
// reason where a subscriber sent the pattern.
var (
	// ErrPatternTooLong is wrapped for a pattern over MaxPatternLength.
	ErrPatternTooLong = errors.New("urlpattern: pattern too long")
	// ErrCountedRepetition is wrapped for a regular-expression group with
	// a counted repetition ({n}, {n,}, {n,m}), whose compiled program
	// would grow with the count rather than with the pattern's length.
	ErrCountedRepetition = errors.New("urlpattern: counted repetition in a regular-expression group")
	// ErrInvalidPattern is wrapped for a pattern the URL Pattern standard
	// (or RE2, for its regular-expression groups) does not accept, and
	// for an invalid base URL.
	ErrInvalidPattern = errors.New("urlpattern: invalid pattern")
)

// Matcher is a compiled URL Pattern with the base it resolves against. It
// is safe for concurrent use.
type Matcher struct {
	raw, base string
	p         *urlpattern.URLPattern
}

var _ hub.Matcher = (*Matcher)(nil)

// New compiles pattern (the constructor-string form of the standard),
// resolving it against base when it is relative. base is the hub's URL,
// such as "https://example.com/.well-known/mercure"; "" accepts absolute
// patterns only. ignoreCase stays off, as draft-08 requires.
func New(pattern, base string) (*Matcher, error) {
	if len(pattern) > MaxPatternLength {
		return nil, fmt.Errorf("%w (%d bytes; max %d)", ErrPatternTooLong, len(pattern), MaxPatternLength)
	}
	if err := checkRegexpGroups(pattern); err != nil {
		return nil, err
	}
	p, err := urlpattern.New(pattern, base, nil)
	if err != nil {
		// The library's text may quote the pattern at length; the reason
		// given to the client is ours.
		return nil, fmt.Errorf("%w: %q", ErrInvalidPattern, truncate(pattern, 64))
	}
	return &Matcher{raw: pattern, base: base, p: p}, nil
}

// Match reports whether topic, resolved against the base, matches every
// component of the pattern. A topic that is not a URL (or a URL reference
// resolvable against the base) matches nothing.
func (m *Matcher) Match(topic string) bool { return m.p.Test(topic, m.base) }

// String returns the pattern as written.
func (m *Matcher) String() string { return m.raw }

// Base returns the URL the pattern and the topics are resolved against.
func (m *Matcher) Base() string { return m.base }

// checkRegexpGroups refuses counted repetition inside the pattern's
// regular-expression groups, the one RE2 construct whose compiled size is
// not linear in its text. It follows the tokenizer of the standard: "\"
// escapes the next character, "(" opens a group whose end is the matching
// ")" (escapes and nested parentheses counted); braces outside a group are
// the pattern syntax's own grouping and are left alone.
func checkRegexpGroups(pattern string) error {
	depth := 0
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '\\':
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == '{' && depth > 0:
			if i+1 < len(pattern) && (pattern[i+1] >= '0' && pattern[i+1] <= '9' || pattern[i+1] == ',') {
				return fmt.Errorf("%w at byte %d", ErrCountedRepetition, i)
			}
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
