package hub

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

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
type Selector struct {
	raw string
	all bool
	re  *regexp.Regexp // nil: matches raw exactly
}

// ParseSelector compiles s. It never fails: an invalid URI template is an
// exact selector.
func ParseSelector(s string) *Selector {
	if s == "*" {
		return &Selector{raw: s, all: true}
	}
	if !strings.ContainsRune(s, '{') {
		return &Selector{raw: s}
	}
	expr, err := templateRegexp(s)
	if err != nil {
		return &Selector{raw: s}
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return &Selector{raw: s}
	}
	return &Selector{raw: s, re: re}
}

// Match reports whether topic matches s.
func (s *Selector) Match(topic string) bool {
	return s.all || topic == s.raw || (s.re != nil && s.re.MatchString(topic))
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
func (s *Selector) Exact() bool { return !s.all && s.re == nil }

// String returns the selector as written.
func (s *Selector) String() string { return s.raw }

// errBadTemplate is why a selector is not a template; it never leaves the
// package (such a selector is exact).
var errBadTemplate = errors.New("hub: invalid URI template")

// Character classes of RFC 6570 section 1.5, as regexp atoms.
const (
	unreservedAtom = `(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})`
	reservedAtom   = `(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})`
	// maxPrefix is the longest prefix modifier enforced; longer ones would
	// make large regexp programs for no practical gain.
	maxPrefix = 128
)

// operator is one row of the table in RFC 6570 appendix A.
type operator struct {
	first, sep string
	named      bool
	ifemp      string
	reserved   bool
}

// operatorFor returns the operator an expression starts with, and whether
// it has one (otherwise the expression is a simple string expansion).
func operatorFor(c byte) (operator, bool) {
	switch c {
	case '+':
		return operator{sep: ",", reserved: true}, true
	case '#':
		return operator{first: "#", sep: ",", reserved: true}, true
	case '.':
		return operator{first: ".", sep: "."}, true
	case '/':
		return operator{first: "/", sep: "/"}, true
	case ';':
		return operator{first: ";", sep: ";", named: true}, true
	case '?':
		return operator{first: "?", sep: "&", named: true, ifemp: "="}, true
	case '&':
		return operator{first: "&", sep: "&", named: true, ifemp: "="}, true
	}
	return operator{sep: ","}, false
}

// templateRegexp returns an anchored regexp matching the expansions of the
// URI template t.
func templateRegexp(t string) (string, error) {
	var b strings.Builder
	b.WriteString(`^`)
	for i := 0; i < len(t); {
		switch t[i] {
		case '{':
			end := strings.IndexByte(t[i:], '}')
			if end < 0 {
				return "", errBadTemplate
			}
			if err := writeExpression(&b, t[i+1:i+end]); err != nil {
				return "", err
			}
			i += end + 1
		case '}':
			return "", errBadTemplate
		default:
			j := strings.IndexAny(t[i:], "{}")
			if j < 0 {
				j = len(t) - i
			}
			b.WriteString(regexp.QuoteMeta(t[i : i+j]))
			i += j
		}
	}
	b.WriteString(`$`)
	return b.String(), nil
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

// writeExpression writes the regexp for one "{…}" expression: nothing when
// every variable is undefined, else the operator's first string and the
// defined variables joined by its separator.
func writeExpression(b *strings.Builder, expr string) error {
	if expr == "" {
		return errBadTemplate
	}
	op, ok := operatorFor(expr[0])
	if ok {
		expr = expr[1:]
	} else if strings.IndexByte("=,!@|", expr[0]) >= 0 {
		return errBadTemplate // operators reserved for future extensions
	}
	atom := unreservedAtom
	if op.reserved {
		atom = reservedAtom
	}
	specs := strings.Split(expr, ",")
	alts := make([]string, 0, len(specs))
	anyExplode := false
	for _, s := range specs {
		v, err := parseVarSpec(s)
		if err != nil {
			return err
		}
		value := atom + `*`
		if v.prefix > 0 && v.prefix <= maxPrefix {
			value = atom + `{0,` + strconv.Itoa(v.prefix) + `}`
		}
		var x string
		switch {
		case v.explode:
			// A list (name=item for named operators) or a map (key=value),
			// items joined by the separator.
			anyExplode = true
			item := value + `(?:=` + value + `)?`
			x = item + `(?:` + regexp.QuoteMeta(op.sep) + item + `)*`
		case op.named && op.ifemp == "":
			x = regexp.QuoteMeta(v.name) + `(?:=` + value + `)?`
		case op.named:
			x = regexp.QuoteMeta(v.name) + `=` + value
		default:
			x = value
		}
		alts = append(alts, x)
	}
	xu := alts[0]
	if len(alts) > 1 {
		xu = `(?:` + strings.Join(alts, `|`) + `)`
	}
	b.WriteString(`(?:`)
	b.WriteString(regexp.QuoteMeta(op.first))
	b.WriteString(xu)
	if len(alts) > 1 || anyExplode {
		b.WriteString(`(?:`)
		b.WriteString(regexp.QuoteMeta(op.sep))
		b.WriteString(xu)
		if anyExplode {
			b.WriteString(`)*`)
		} else {
			b.WriteString(`){0,` + strconv.Itoa(len(alts)-1) + `}`)
		}
	}
	b.WriteString(`)?`)
	return nil
}

// DefaultSelectorCacheSize is how many compiled selectors a hub keeps.
const DefaultSelectorCacheSize = 10_000

// selectorCache keeps compiled selectors so each distinct selector is
// compiled once while it is in use. It holds two generations: when the
// current one is full it becomes the previous one and the oldest is
// dropped, so recently used selectors stay and the size stays bounded.
type selectorCache struct {
	max  int
	mu   sync.Mutex
	cur  map[string]*Selector // guarded by mu
	prev map[string]*Selector // guarded by mu
}

func newSelectorCache(max int) *selectorCache {
	if max < 2 {
		max = 2
	}
	return &selectorCache{max: max, cur: make(map[string]*Selector)}
}

// get returns the compiled selector for raw.
func (c *selectorCache) get(raw string) *Selector {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.cur[raw]; ok {
		return s
	}
	s, ok := c.prev[raw]
	if !ok {
		s = ParseSelector(raw)
	}
	if len(c.cur) >= c.max/2 {
		c.prev, c.cur = c.cur, make(map[string]*Selector, len(c.cur))
	}
	c.cur[raw] = s
	return s
}

// len reports how many selectors the cache holds.
func (c *selectorCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}
