// Package expect checks assertions on a live event stream, for CI: an
// event of a type whose data matches a JSONPath expression or a regexp
// within a time, counts, the order of ids, the longest gap, the first
// event's delay, reconnections that resume without loss or duplicate, the
// response's status, and the debugger's lint rules. It backs "ssekit
// expect"; the assertion language is documented in docs/expect.md.
//
// JSONPath is RFC 9535, through github.com/theory/jsonpath: a small,
// maintained implementation of the standard with no dependencies of its
// own, so that a path means what every other RFC 9535 tool says it means.
package expect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/theory/jsonpath"
)

// ErrAssertion is wrapped by every error of Parse and ParseLine.
var ErrAssertion = errors.New("expect: bad assertion")

// Limits of an assertion file.
const (
	MaxFileSize   = 1 << 20
	MaxAssertions = 1000
	maxRegexpLen  = 1 << 10
)

// Kinds of Assertion.
const (
	KindEvent      = "event"       // an event of a type (and matching data) arrives
	KindCount      = "count"       // how many events (of a type) arrive
	KindIDs        = "ids"         // the order of ids: ascending or unique
	KindMaxGap     = "max-gap"     // no silence between events longer than a duration
	KindFirstEvent = "first-event" // the first event arrives within a duration
	KindResume     = "resume"      // reconnections resume without loss or duplicate
	KindReconnects = "reconnects"  // how many reconnections happen
	KindStatus     = "status"      // the first response's status
	KindLint       = "lint"        // the debugger's lint rules find nothing
)

// LintRules are the rules of debugger.Lint, sorted, that "lint RULE"
// may name (a test keeps the list in step with the debugger).
var LintRules = []string{
	"buffering", "cache-control", "compression", "content-length", "content-type", "event-size",
	"heartbeat", "line-endings", "no-events", "no-ids", "no-response", "proxy-buffering",
	"retry-invalid", "retry-small", "slow-headers", "status", "stream-ended",
}

// An Assertion is one line of the assertion language.
type Assertion struct {
	// Source is where it was written ("checks.txt:3", "--expect 2").
	Source string
	// Text is the assertion as written.
	Text string
	Kind string

	typ    string        // event type ("*" for any), for event and count
	match  *dataMatch    // event: nil means any data
	within time.Duration // event, first-event: 0 means the observation's time
	op     string        // count, reconnects: == != < <= > >=
	n      int           // count, reconnects, status
	order  string        // ids: ascending or unique
	gap    time.Duration // max-gap
	rules  []string      // lint: nil means every error-severity finding
}

// dataMatch is the data condition of an event assertion.
type dataMatch struct {
	path   *jsonpath.Path // nil: the data itself
	op     string         // "~", "==", "!=", "exists"
	rx     *regexp.Regexp
	value  any // for == and !=, a decoded JSON value
	rawVal string
}

// Parse parses an assertion file: one assertion a line; blank lines and
// lines starting with # are skipped. Errors name the file and line.
func Parse(name string, text []byte) ([]*Assertion, error) {
	if len(text) > MaxFileSize {
		return nil, fmt.Errorf("%w: %s: %d bytes; the limit is %d", ErrAssertion, name, len(text), MaxFileSize)
	}
	var out []*Assertion
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		a, err := ParseLine(fmt.Sprintf("%s:%d", name, n), line)
		if err != nil {
			return nil, err
		}
		if out = append(out, a); len(out) > MaxAssertions {
			return nil, fmt.Errorf("%w: %s:%d: more than %d assertions", ErrAssertion, name, n, MaxAssertions)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrAssertion, name, err)
	}
	return out, nil
}

// ParseLine parses one assertion; source says where it was written.
func ParseLine(source, line string) (*Assertion, error) {
	a, err := parseLine(strings.TrimSpace(line))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %q: %v", ErrAssertion, source, line, err)
	}
	a.Source, a.Text = source, strings.TrimSpace(line)
	return a, nil
}

func parseLine(line string) (*Assertion, error) {
	word, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	a := &Assertion{Kind: word}
	switch word {
	case KindEvent:
		rest, within, err := cutWithin(rest)
		if err != nil {
			return nil, err
		}
		a.within = within
		typ, cond, _ := strings.Cut(rest, " ")
		if typ == "" {
			return nil, errors.New("event wants a TYPE (* for any)")
		}
		a.typ = typ
		if cond = strings.TrimSpace(cond); cond != "" {
			if a.match, err = parseMatch(cond); err != nil {
				return nil, err
			}
		}
	case KindCount:
		f := strings.Fields(rest)
		if len(f) == 2 {
			f = append([]string{"*"}, f...)
		}
		if len(f) != 3 {
			return nil, errors.New("count wants [TYPE] OP N, as count delta >= 3")
		}
		a.typ = f[0]
		var err error
		if a.op, a.n, err = parseComparison(f[1], f[2]); err != nil {
			return nil, err
		}
	case KindReconnects:
		f := strings.Fields(rest)
		if len(f) != 2 {
			return nil, errors.New("reconnects wants OP N, as reconnects <= 2")
		}
		var err error
		if a.op, a.n, err = parseComparison(f[0], f[1]); err != nil {
			return nil, err
		}
	case KindIDs:
		if rest != "ascending" && rest != "unique" {
			return nil, errors.New("ids wants ascending or unique")
		}
		a.order = rest
	case KindMaxGap:
		d, err := parsePositive(rest)
		if err != nil {
			return nil, fmt.Errorf("max-gap wants a duration: %v", err)
		}
		a.gap = d
	case KindFirstEvent:
		w, d, _ := strings.Cut(rest, " ")
		if w != "within" {
			return nil, errors.New("first-event wants within DURATION")
		}
		var err error
		if a.within, err = parsePositive(d); err != nil {
			return nil, fmt.Errorf("first-event within: %v", err)
		}
	case KindResume:
		if rest != "" {
			return nil, errors.New("resume takes no argument")
		}
	case KindStatus:
		n, err := strconv.Atoi(rest)
		if err != nil || n < 100 || n > 999 {
			return nil, errors.New("status wants a code from 100 to 999")
		}
		a.n = n
	case KindLint:
		a.rules = strings.Fields(rest)
		for _, r := range a.rules {
			if !slices.Contains(LintRules, r) {
				return nil, fmt.Errorf("unknown lint rule %q; the rules are %s", r, strings.Join(LintRules, ", "))
			}
		}
	default:
		return nil, fmt.Errorf("unknown assertion %q; want event, count, ids, max-gap, first-event, resume, reconnects, status or lint", word)
	}
	return a, nil
}

// cutWithin removes a trailing "within DURATION".
func cutWithin(s string) (string, time.Duration, error) {
	f := strings.Fields(s)
	if len(f) >= 2 && f[len(f)-2] == "within" {
		d, err := parsePositive(f[len(f)-1])
		if err != nil {
			return "", 0, fmt.Errorf("within: %v", err)
		}
		i := strings.LastIndex(s, "within")
		return strings.TrimSpace(s[:i]), d, nil
	}
	return s, 0, nil
}

func parsePositive(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration such as 500ms or 5s, got %q", s)
	}
	return d, nil
}

func parseComparison(op, n string) (string, int, error) {
	switch op {
	case "==", "!=", "<", "<=", ">", ">=":
	default:
		return "", 0, fmt.Errorf("want an operator ==, !=, <, <=, > or >=, got %q", op)
	}
	v, err := strconv.Atoi(n)
	if err != nil || v < 0 {
		return "", 0, fmt.Errorf("want a count, got %q", n)
	}
	return op, v, nil
}

func compare(got int, op string, want int) bool {
	switch op {
	case "==":
		return got == want
	case "!=":
		return got != want
	case "<":
		return got < want
	case "<=":
		return got <= want
	case ">":
		return got > want
	}
	return got >= want
}

// parseMatch parses "data ~ REGEXP", "json PATH ~ REGEXP",
// "json PATH == VALUE", "json PATH != VALUE" or "json PATH exists".
func parseMatch(cond string) (*dataMatch, error) {
	what, rest, _ := strings.Cut(cond, " ")
	rest = strings.TrimSpace(rest)
	m := &dataMatch{}
	switch what {
	case "data":
	case "json":
		expr, r, _ := strings.Cut(rest, " ")
		p, err := jsonpath.Parse(expr)
		if err != nil {
			return nil, fmt.Errorf("bad JSONPath %q: %v", expr, err)
		}
		m.path, rest = p, strings.TrimSpace(r)
		if rest == "exists" {
			m.op = "exists"
			return m, nil
		}
	default:
		return nil, errors.New("an event's condition is data ~ REGEXP or json PATH (~ REGEXP | == VALUE | != VALUE | exists)")
	}
	op, operand, _ := strings.Cut(rest, " ")
	operand = strings.TrimSpace(operand)
	switch {
	case op == "~":
		if operand == "" || len(operand) > maxRegexpLen {
			return nil, fmt.Errorf("~ wants a regexp of 1 to %d bytes", maxRegexpLen)
		}
		rx, err := regexp.Compile(operand)
		if err != nil {
			return nil, fmt.Errorf("bad regexp: %v", err)
		}
		m.op, m.rx = op, rx
	case (op == "==" || op == "!=") && m.path != nil:
		m.op, m.rawVal = op, operand
		if err := json.Unmarshal([]byte(operand), &m.value); err != nil {
			m.value = operand // a bare word is a string
		}
	default:
		if m.path == nil {
			return nil, errors.New("data wants ~ REGEXP")
		}
		return nil, errors.New("json PATH wants ~ REGEXP, == VALUE, != VALUE or exists")
	}
	return m, nil
}

// matches reports whether an event's data meets the condition.
func (m *dataMatch) matches(data string) bool {
	if m.path == nil {
		return m.rx.MatchString(data)
	}
	var doc any
	if err := json.Unmarshal([]byte(data), &doc); err != nil {
		return false
	}
	nodes := m.path.Select(doc)
	switch m.op {
	case "exists":
		return len(nodes) > 0
	case "!=":
		for _, n := range nodes {
			if reflect.DeepEqual(n, m.value) {
				return false
			}
		}
		return len(nodes) > 0
	}
	for _, n := range nodes {
		switch m.op {
		case "==":
			if reflect.DeepEqual(n, m.value) {
				return true
			}
		case "~":
			s, ok := n.(string)
			if !ok {
				b, _ := json.Marshal(n)
				s = string(b)
			}
			if m.rx.MatchString(s) {
				return true
			}
		}
	}
	return false
}
