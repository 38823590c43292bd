package hub

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Limits on one selector, so what a subscriber can make the hub compile and
// keep is bounded by the request, not by the shape of its selectors.
const (
	// MaxSelectorLength is the longest selector, template or not, in bytes
	// (4 KiB: far above any URL a topic is named by).
	MaxSelectorLength = 4096
	// MaxTemplateVariables is the most variables one template may hold,
	// summed over its expressions.
	MaxTemplateVariables = 64
	// MaxSubscriptionSelectorBytes bounds the selectors of one
	// subscription together (64 KiB: sixteen selectors of the longest
	// kind), so one request cannot make the hub compile a hundred
	// templates of MaxSelectorLength each.
	MaxSubscriptionSelectorBytes = 64 << 10
)

// Errors of selector compilation, to test with errors.Is; the server answers
// them with 400 and the wrapped reason.
var (
	// ErrSelectorTooLong is wrapped by CompileSelector for a selector over
	// MaxSelectorLength bytes.
	ErrSelectorTooLong = errors.New("hub: selector too long")
	// ErrTooManyVariables is wrapped by CompileSelector for a template with
	// more than MaxTemplateVariables variables.
	ErrTooManyVariables = errors.New("hub: too many template variables")
	// ErrReservedSelector is returned by Subscribe for a selector that
	// starts with a NUL byte: such keys are MatcherSelector's, and a
	// selector spelled like one could join its subscribers' group.
	ErrReservedSelector = errors.New("hub: selector starts with a NUL byte")
)

// Matcher is a compiled topic selector of any kind: the RFC 6570 templates
// of draft-07 (Selector) or a kind implemented outside the hub, such as
// the URL Patterns of draft-08 (package matcher/urlpattern), so the hub
// stays free of outside imports. Match must be safe for concurrent use and
// cost no more than linear in the topic's length for a given matcher.
type Matcher interface {
	// Match reports whether topic matches.
	Match(topic string) bool
	// String returns the selector as written.
	String() string
}

var _ Matcher = (*Selector)(nil)

// Selector is a compiled Mercure topic selector: "*" matches every topic;
// an RFC 6570 URI template (levels 1 to 4) matches the topics it can expand
// to; any selector, template or not, matches the topic equal to it.
//
// A template is matched, not expanded, so the match is as lenient as the
// usual Mercure hubs': a variable matches any run of the characters its
// operator allows (unreserved characters and percent-escapes, plus reserved
// ones for {+var} and {#var}); a variable without the explode modifier
// matches a string, not a list; a prefix :n longer than 128 characters is
// not enforced; and variables of one expression may appear in any order. A
// selector that is not a valid template is an exact selector.
//
// A template compiles into a program whose size is linear in the
// template's length (one instruction per literal byte, a few per variable),
// evaluated by a Thompson-style simulation: matching a topic costs at most
// the topic's length times the program's size, with no backtracking and no
// regular expression whose size grows with the square of the variables.
type Selector struct {
	raw    string
	all    bool
	prog   *program // nil: matches raw exactly
	prefix string   // the literal text every match starts with
	ext    Matcher  // non-nil: a matcher built outside the hub; raw is its index key
}

// ExactSelector returns the selector that matches only the topic equal to
// s, byte for byte, even when s looks like a template (draft-08's exact
// matcher type). It shares the hub's exact index with topic= selectors.
func ExactSelector(s string) *Selector { return &Selector{raw: s} }

// MatcherSelector wraps a Matcher built outside the hub (such as a URL
// Pattern) so the hub can index it beside its own selectors. key names it
// in the index: subscribers whose matchers have equal keys share one match
// per update, so key must tell apart matchers that differ in meaning (the
// matcher's type, pattern and base). It starts with a NUL byte so it never
// equals a topic or a topic= selector.
func MatcherSelector(key string, m Matcher) *Selector {
	return &Selector{raw: "\x00" + key, ext: m}
}

// CompileSelector compiles s, refusing it when it is over the limits
// (MaxSelectorLength, MaxTemplateVariables). An invalid URI template is not
// an error: it is an exact selector.
func CompileSelector(s string) (*Selector, error) {
	if len(s) > MaxSelectorLength {
		return nil, fmt.Errorf("%w (%d bytes; max %d)", ErrSelectorTooLong, len(s), MaxSelectorLength)
	}
	sel, vars := compileSelector(s)
	if vars > MaxTemplateVariables {
		return nil, fmt.Errorf("%w (%d; max %d)", ErrTooManyVariables, vars, MaxTemplateVariables)
	}
	return sel, nil
}

// ParseSelector compiles s without the limits of CompileSelector. It never
// fails: an invalid URI template is an exact selector. Its cost is still
// linear in len(s).
func ParseSelector(s string) *Selector {
	sel, _ := compileSelector(s)
	return sel
}

// compileSelector compiles s and reports how many template variables it
// has (0 for a selector that is not a template).
func compileSelector(s string) (*Selector, int) {
	if s == "*" {
		return &Selector{raw: s, all: true}, 0
	}
	if !strings.ContainsRune(s, '{') {
		return &Selector{raw: s}, 0
	}
	p, vars, err := compileTemplate(s)
	if err != nil {
		return &Selector{raw: s}, 0
	}
	sel := &Selector{raw: s, prog: p}
	// The literal text before the first expression is checked with one
	// comparison, and the program starts after it.
	sel.prefix = s[:strings.IndexByte(s, '{')]
	return sel, vars
}

// Match reports whether topic matches s.
func (s *Selector) Match(topic string) bool {
	if s.ext != nil {
		return s.ext.Match(topic)
	}
	if s.all || topic == s.raw {
		return true
	}
	if s.prog == nil || !strings.HasPrefix(topic, s.prefix) {
		return false
	}
	return s.prog.match(topic[len(s.prefix):])
}

// MatchAny reports whether any of topics matches s.
func (s *Selector) MatchAny(topics []string) bool {
	for _, t := range topics {
		if s.Match(t) {
			return true
		}
	}
	return false
}

// Exact reports whether s matches only the topic equal to it, so the hub can
// find its subscribers with a map lookup.
func (s *Selector) Exact() bool { return !s.all && s.prog == nil && s.ext == nil }

// String returns the selector as written (for a MatcherSelector, its
// matcher's).
func (s *Selector) String() string {
	if s.ext != nil {
		return s.ext.String()
	}
	return s.raw
}

// selectorOverhead is what a cached selector costs beyond its text and
// program: the Selector, its map entry and key header, size-class rounding
// (measured by BenchmarkSelectorRetained).
const selectorOverhead = 320

// Size is an estimate, in bytes, of the memory s holds: its text and its
// compiled program. The selector cache is bounded by the sum of these.
func (s *Selector) Size() int {
	n := selectorOverhead + len(s.raw)
	if s.prog != nil {
		n += s.prog.size()
	}
	return n
}

// errBadTemplate is why a selector is not a template; it never leaves the
// package (such a selector is exact).
var errBadTemplate = errors.New("hub: invalid URI template")

// maxPrefix is the longest prefix modifier enforced, as in the regexp
// matchers of other hubs; a longer one matches like no prefix.
const maxPrefix = 128

// Character classes of RFC 6570 section 1.5: the bytes a value may hold
// unescaped, besides percent-escapes.
var (
	unreservedSet = byteSet(`ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~`)
	reservedSet   = byteSet(`ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=`)
)

func byteSet(s string) *[256]bool {
	var set [256]bool
	for i := 0; i < len(s); i++ {
		set[s[i]] = true
	}
	return &set
}

// operator is one row of the table in RFC 6570 appendix A.
type operator struct {
	first, sep byte // 0: none
	named      bool
	ifemp      bool // "=" after a named variable even when empty
	reserved   bool
}

// operatorFor returns the operator an expression starts with, and whether
// it has one (otherwise the expression is a simple string expansion).
func operatorFor(c byte) (operator, bool) {
	switch c {
	case '+':
		return operator{sep: ',', reserved: true}, true
	case '#':
		return operator{first: '#', sep: ',', reserved: true}, true
	case '.':
		return operator{first: '.', sep: '.'}, true
	case '/':
		return operator{first: '/', sep: '/'}, true
	case ';':
		return operator{first: ';', sep: ';', named: true}, true
	case '?':
		return operator{first: '?', sep: '&', named: true, ifemp: true}, true
	case '&':
		return operator{first: '&', sep: '&', named: true, ifemp: true}, true
	}
	return operator{sep: ','}, false
}

// varSpec is one variable of an expression.
type varSpec struct {
	name    string
	prefix  int // 0: none
	explode bool
}

func parseVarSpec(s string) (varSpec, error) {
	var v varSpec
	if name, ok := strings.CutSuffix(s, "*"); ok {
		v.explode, s = true, name
	} else if name, n, ok := strings.Cut(s, ":"); ok {
		p, err := strconv.Atoi(n)
		if err != nil || p < 1 || p > 9999 || n[0] == '0' || n[0] == '+' {
			return v, errBadTemplate
		}
		v.prefix, s = p, name
	}
	if !validVarName(s) {
		return v, errBadTemplate
	}
	v.name = s
	return v, nil
}

// validVarName reports whether s is an RFC 6570 varname: varchars (ALPHA,
// DIGIT, "_", pct-encoded) with single dots between them.
func validVarName(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// DefaultSelectorCacheSize is how many compiled selectors a hub keeps.
const DefaultSelectorCacheSize = 10_000

// DefaultSelectorCacheBytes bounds the memory of a hub's compiled selectors
// (as Selector.Size counts it), whatever their number: 32 MiB.
const DefaultSelectorCacheBytes = 32 << 20

// selectorCache keeps compiled selectors so each distinct selector is
// compiled once while it is in use. It holds two generations: when the
// current one is full (in entries or in bytes) it becomes the previous one
// and the oldest is dropped, so recently used selectors stay and both the
// count and the memory stay bounded.
//
// Compilation runs outside the lock: a long selector being compiled never
// holds back publish authorisation or other subscribers, which only take
// the lock for a map lookup or insertion.
type selectorCache struct {
	max, maxBytes int
	compile       func(string) (*Selector, error) // CompileSelector; tests replace it
	mu            sync.Mutex
	cur           map[string]*Selector // guarded by mu
	prev          map[string]*Selector // guarded by mu
	curBytes      int                  // guarded by mu; Size of cur's selectors
	prevBytes     int                  // guarded by mu; Size of prev's selectors
}

func newSelectorCache(max int) *selectorCache {
	return newSelectorCacheBytes(max, DefaultSelectorCacheBytes)
}

// newSelectorCacheBytes returns a cache of at most max selectors and about
// maxBytes bytes of them.
func newSelectorCacheBytes(max, maxBytes int) *selectorCache {
	if max < 2 {
		max = 2
	}
	return &selectorCache{max: max, maxBytes: maxBytes, compile: CompileSelector, cur: make(map[string]*Selector)}
}

// get returns the compiled selector for raw, or the error of
// CompileSelector for one over the limits (which is not cached: it costs
// no more than reading its length).
func (c *selectorCache) get(raw string) (*Selector, error) {
	return c.getFunc(raw, func() (*Selector, error) { return c.compile(raw) })
}

// getFunc is get with the compilation given: for MatcherSelectors, raw is
// their index key.
func (c *selectorCache) getFunc(raw string, compile func() (*Selector, error)) (*Selector, error) {
	c.mu.Lock()
	if s, ok := c.cur[raw]; ok {
		c.mu.Unlock()
		return s, nil
	}
	s, ok := c.prev[raw]
	if ok {
		c.insertLocked(raw, s)
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()

	s, err := compile()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if won, ok := c.cur[raw]; ok { // compiled meanwhile by another caller
		return won, nil
	}
	c.insertLocked(raw, s)
	return s, nil
}

// match reports whether topic matches selector; a selector over the limits
// matches nothing.
func (c *selectorCache) match(selector, topic string) bool {
	s, err := c.get(selector)
	return err == nil && s.Match(topic)
}

// insertLocked adds s to the current generation, first turning it into the
// previous one when it is full.
func (c *selectorCache) insertLocked(raw string, s *Selector) {
	size := s.Size()
	if len(c.cur) >= c.max/2 || (len(c.cur) > 0 && c.curBytes+size > c.maxBytes/2) {
		c.prev, c.prevBytes = c.cur, c.curBytes
		c.cur, c.curBytes = make(map[string]*Selector, len(c.prev)), 0
	}
	c.cur[raw] = s
	c.curBytes += size
}

// len reports how many selectors the cache holds.
func (c *selectorCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}

// bytes reports the Size of the selectors the cache holds.
func (c *selectorCache) bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.curBytes + c.prevBytes
}
