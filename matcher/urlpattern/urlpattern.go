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
	"strings"

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
	// pathPrefix is the literal text every matching pathname starts with
	// (see literalPathPrefix); "" when the pattern's pathname starts with
	// a group.
	pathPrefix string
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
	return &Matcher{raw: pattern, base: base, p: p, pathPrefix: literalPathPrefix(p.Pathname())}, nil
}

// Match reports whether topic, resolved against the base, matches every
// component of the pattern. A topic that is not a URL (or a URL reference
// resolvable against the base) matches nothing.
//
// Parsing the topic as a WHATWG URL is most of the cost (about 25 µs), so
// a topic already in canonical form whose path cannot start with the
// pattern's literal path prefix is refused without it.
func (m *Matcher) Match(topic string) bool {
	if m.pathPrefix != "" {
		if path, ok := canonicalPath(topic); ok && !strings.HasPrefix(path, m.pathPrefix) {
			return false
		}
	}
	return m.p.Test(topic, m.base)
}

// literalPathPrefix returns the literal text at the start of a compiled
// pathname pattern: up to its first name, wildcard, group, modifier or
// escape, less a "/" right before it (the prefix of that group, which an
// optional group drops: "/books/:id?" matches "/books").
func literalPathPrefix(pathname string) string {
	i := strings.IndexAny(pathname, `:*(){}\?+`)
	if i < 0 {
		return pathname
	}
	return strings.TrimSuffix(pathname[:i], "/")
}

// canonicalPath returns the path of topic when topic is an absolute http,
// https, ws or wss URL already in the form the WHATWG URL parser leaves
// unchanged in its path: only unreserved characters, "/" and the
// authority's ":" and "@", no dot segment, no percent-escape, no
// backslash, no space or control character. ok is false for any other
// topic, which must be parsed to be matched.
func canonicalPath(topic string) (path string, ok bool) {
	var rest string
	for _, scheme := range [...]string{"https://", "http://", "wss://", "ws://"} {
		if r, found := strings.CutPrefix(topic, scheme); found {
			rest, ok = r, true
			break
		}
	}
	if !ok {
		return "", false
	}
	end := strings.IndexAny(rest, "?#")
	if end < 0 {
		end = len(rest)
	}
	slash := strings.IndexByte(rest[:end], '/')
	if slash < 0 {
		return "/", simpleText(rest[:end], true)
	}
	path = rest[slash:end]
	if !simpleText(rest[:slash], true) || !simpleText(path, false) ||
		strings.Contains(path, "/./") || strings.Contains(path, "/../") ||
		strings.HasSuffix(path, "/.") || strings.HasSuffix(path, "/..") {
		return "", false
	}
	return path, true
}

// simpleText reports whether s holds only characters no part of the URL
// parser rewrites: letters, digits, "-", ".", "_", "~", "/", and ":" and
// "@" in the authority.
func simpleText(s string, authority bool) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/':
		case authority && (c == ':' || c == '@'):
		default:
			return false
		}
	}
	return true
}

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
