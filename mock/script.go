// Package mock serves event streams from a script: the events, comments and
// raw bytes to send, the pauses between them, the status and headers, and
// the faults a client must survive (dropped connections, bytes split at
// any boundary, slow trickles, gzip, a BOM, CR or CRLF line ends, invalid
// UTF-8, oversized events, failing reconnections). It backs "ssekit mock"
// and ssetest.NewMock; the script format is documented in docs/mock.md.
//
// The package imports only the standard library, so that ssetest can use
// it and a project's tests pull in nothing else.
package mock

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Limits of a script, so that a script (or a client of a mock exposed by
// mistake) cannot make a mock burn CPU or memory.
const (
	MaxScriptSize = 1 << 20       // bytes of script text
	MaxPause      = time.Minute   // one pause or trickle
	MaxRepeat     = 100_000       // iterations of one repeat
	MaxDepth      = 4             // nested repeats
	MaxBigEvent   = 16 << 20      // bytes of data of one bigevent
	MaxHeaderSize = 8 << 10       // bytes of one header value
	maxRegexpLen  = 1 << 10       // bytes of one match regexp
	maxLineLen    = 64 << 10      // bytes of one script line
	defaultStatus = http.StatusOK // of a response without a status
	anyMethod     = "*"           // a route for every method
	eventStream   = "text/event-stream"
)

// ErrScript is wrapped by every error of Parse, which also names the
// script's file and line.
var ErrScript = errors.New("mock: bad script")

// A Script is a parsed script: its routes, in the order they are tried.
// It is immutable once parsed; a Server keeps the per-route attempt
// counts, so one Script may back several servers.
type Script struct {
	// Name is the file name errors and logs use.
	Name string
	// Seed seeds the random choices (chunk random, pause ranges); "seed N"
	// in the script, 1 when the script sets none.
	Seed   uint64
	Routes []*Route
}

// A Route answers the requests it matches.
type Route struct {
	Line      int
	Method    string // anyMethod for every method
	Path      string // exact path, or a prefix when Prefix
	Prefix    bool
	matchers  []matcher
	Responses []*Response
}

// A Response is what a route answers on the attempts of its range.
type Response struct {
	Line     int
	From, To int // the attempts served, 1-based, inclusive; To 0: no end
	Status   int
	Header   http.Header
	Gzip     bool // compress the body (Content-Encoding: gzip)
	Resume   bool // start after the event named by Last-Event-ID
	steps    []step
	hasSteps bool
}

// A matcher tests one property of a request.
type matcher struct {
	desc  string
	match func(r *http.Request, body []byte) bool
}

type stepKind int

const (
	stepLine    stepKind = iota // "> LINE": a line of the stream, with the current line end
	stepBytes                   // bytes "…": bytes as they are
	stepPause                   // pause D or pause D1..D2
	stepLineEnd                 // lineend lf|crlf|cr
	stepChunk                   // chunk N | chunk random N | chunk off
	stepTrickle                 // trickle D
	stepBig                     // bigevent SIZE
	stepRepeat                  // repeat N … end
	stepDrop                    // drop: abort the connection
	stepHold                    // hold: keep the connection open until the client leaves
)

type step struct {
	line   int
	kind   stepKind
	text   string // line, bytes, line end
	d1, d2 time.Duration
	n      int  // chunk size, bigevent size, repeat count
	random bool // chunk random
	body   []step
}

// Parse parses a script; name is the file name its errors give. A script
// with no "route" line is one route for every method and path.
func Parse(name string, text []byte) (*Script, error) {
	if len(text) > MaxScriptSize {
		return nil, fmt.Errorf("%w: %s: %d bytes; the limit is %d", ErrScript, name, len(text), MaxScriptSize)
	}
	p := &parser{s: &Script{Name: name, Seed: 1}}
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	sc.Buffer(make([]byte, 0, 4096), maxLineLen+2)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(strings.TrimSuffix(sc.Text(), "\r")); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrScript, name, p.line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s:%d: %v", ErrScript, name, p.line+1, err)
	}
	if len(p.stack) > 0 {
		return nil, fmt.Errorf("%w: %s:%d: repeat without end", ErrScript, name, p.stack[len(p.stack)-1].line)
	}
	if len(p.s.Routes) == 0 {
		return nil, fmt.Errorf("%w: %s: no route and no step: nothing to serve", ErrScript, name)
	}
	for _, rt := range p.s.Routes {
		if len(rt.Responses) == 0 {
			return nil, fmt.Errorf("%w: %s:%d: route %s %s has no response", ErrScript, name, rt.Line, rt.Method, rt.pattern())
		}
	}
	return p.s, nil
}

func (rt *Route) pattern() string {
	if rt.Prefix {
		return rt.Path + "*"
	}
	return rt.Path
}

type parser struct {
	s     *Script
	line  int
	route *Route
	resp  *Response
	stack []*step // open repeats
}

func (p *parser) parseLine(line string) error {
	trimmed := strings.TrimLeft(line, " \t")
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return nil
	}
	if strings.HasPrefix(trimmed, ">") {
		text := strings.TrimPrefix(trimmed[1:], " ")
		if strings.ContainsAny(text, "\r\n") {
			return errors.New("a > line cannot hold a line end; use bytes \"…\"")
		}
		return p.addStep(step{kind: stepLine, text: text})
	}
	word, rest, _ := strings.Cut(trimmed, " ")
	if word != "bytes" {
		// A directive may end with a comment: " # …".
		if i := strings.Index(rest, " #"); i >= 0 {
			rest = rest[:i]
		} else if strings.HasPrefix(rest, "#") {
			rest = ""
		}
	}
	rest = strings.TrimSpace(rest)
	switch word {
	case "seed":
		if p.route != nil {
			return errors.New("seed must come before the first route")
		}
		n, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			return fmt.Errorf("seed wants a non-negative integer, not %q", rest)
		}
		p.s.Seed = n
		return nil
	case "route":
		return p.parseRoute(rest)
	case "match":
		return p.parseMatch(rest)
	case "attempt":
		return p.parseAttempt(rest)
	case "status", "header", "gzip", "resume":
		return p.parseResponseSetting(word, rest)
	case "end":
		if rest != "" {
			return fmt.Errorf("end takes no argument, got %q", rest)
		}
		if len(p.stack) == 0 {
			return errors.New("end without repeat")
		}
		rep := p.stack[len(p.stack)-1]
		p.stack = p.stack[:len(p.stack)-1]
		return p.appendStep(*rep)
	}
	st, err := parseStep(word, rest)
	if err != nil {
		return err
	}
	if st.kind == stepRepeat {
		if len(p.stack) >= MaxDepth {
			return fmt.Errorf("repeats nested more than %d deep", MaxDepth)
		}
		if _, err := p.response(); err != nil {
			return err
		}
		st.line = p.line
		p.stack = append(p.stack, &st)
		return nil
	}
	return p.addStep(st)
}

func (p *parser) parseRoute(rest string) error {
	if len(p.stack) > 0 {
		return errors.New("route inside a repeat")
	}
	f := strings.Fields(rest)
	if len(f) != 2 {
		return fmt.Errorf("route wants METHOD PATH (METHOD may be *), got %q", rest)
	}
	method, path := f[0], f[1]
	if method != anyMethod && !validToken(method) {
		return fmt.Errorf("%q is not an HTTP method", method)
	}
	rt := &Route{Line: p.line, Method: method}
	switch {
	case path == "*":
		rt.Path, rt.Prefix = "/", true
	case !strings.HasPrefix(path, "/"):
		return fmt.Errorf("a route's path starts with / (or is *), not %q", path)
	case strings.HasSuffix(path, "*"):
		rt.Path, rt.Prefix = strings.TrimSuffix(path, "*"), true
	default:
		rt.Path = path
	}
	p.s.Routes = append(p.s.Routes, rt)
	p.route, p.resp = rt, nil
	return nil
}

// currentRoute returns the route being parsed, creating the implicit one
// of a script without routes.
func (p *parser) currentRoute() (*Route, error) {
	if p.route == nil {
		if len(p.s.Routes) > 0 {
			return nil, errors.New("internal: lost route")
		}
		p.route = &Route{Line: p.line, Method: anyMethod, Path: "/", Prefix: true}
		p.s.Routes = append(p.s.Routes, p.route)
	}
	return p.route, nil
}

func (p *parser) parseMatch(rest string) error {
	rt, err := p.currentRoute()
	if err != nil {
		return err
	}
	if len(rt.Responses) > 0 {
		return errors.New("match must come before the route's responses and steps")
	}
	what, arg, _ := strings.Cut(rest, " ")
	arg = strings.TrimSpace(arg)
	var m matcher
	switch what {
	case "header":
		m, err = headerMatcher(arg)
	case "body":
		m, err = bodyMatcher(arg)
	case "query":
		m, err = queryMatcher(arg)
	default:
		return fmt.Errorf("match wants header, body or query, not %q", what)
	}
	if err != nil {
		return err
	}
	rt.matchers = append(rt.matchers, m)
	return nil
}

// headerMatcher parses "Name: value" (exact, after trimming) or
// "Name ~ REGEXP".
func headerMatcher(arg string) (matcher, error) {
	if name, re, ok := strings.Cut(arg, " ~ "); ok && validToken(strings.TrimSpace(name)) {
		rx, err := compile(re)
		if err != nil {
			return matcher{}, err
		}
		name = strings.TrimSpace(name)
		return matcher{desc: "header " + arg, match: func(r *http.Request, _ []byte) bool {
			for _, v := range r.Header.Values(name) {
				if rx.MatchString(v) {
					return true
				}
			}
			return false
		}}, nil
	}
	name, value, ok := strings.Cut(arg, ":")
	name = strings.TrimSpace(name)
	if !ok || !validToken(name) {
		return matcher{}, fmt.Errorf("match header wants 'Name: value' or 'Name ~ REGEXP', got %q", arg)
	}
	value = strings.TrimSpace(value)
	return matcher{desc: "header " + arg, match: func(r *http.Request, _ []byte) bool {
		for _, v := range r.Header.Values(name) {
			if strings.TrimSpace(v) == value {
				return true
			}
		}
		return false
	}}, nil
}

// bodyMatcher parses "~ REGEXP" or "contains TEXT".
func bodyMatcher(arg string) (matcher, error) {
	switch op, operand, _ := strings.Cut(arg, " "); op {
	case "~":
		rx, err := compile(strings.TrimSpace(operand))
		if err != nil {
			return matcher{}, err
		}
		return matcher{desc: "body " + arg, match: func(_ *http.Request, b []byte) bool { return rx.Match(b) }}, nil
	case "contains":
		text := strings.TrimSpace(operand)
		if text == "" {
			return matcher{}, errors.New("match body contains wants a text")
		}
		return matcher{desc: "body " + arg, match: func(_ *http.Request, b []byte) bool { return strings.Contains(string(b), text) }}, nil
	}
	return matcher{}, fmt.Errorf("match body wants '~ REGEXP' or 'contains TEXT', got %q", arg)
}

// queryMatcher parses "name=value".
func queryMatcher(arg string) (matcher, error) {
	name, value, ok := strings.Cut(arg, "=")
	if !ok || name == "" {
		return matcher{}, fmt.Errorf("match query wants name=value, got %q", arg)
	}
	return matcher{desc: "query " + arg, match: func(r *http.Request, _ []byte) bool {
		for _, v := range r.URL.Query()[name] {
			if v == value {
				return true
			}
		}
		return false
	}}, nil
}

func compile(re string) (*regexp.Regexp, error) {
	re = strings.TrimSpace(re)
	if re == "" {
		return nil, errors.New("empty regexp")
	}
	if len(re) > maxRegexpLen {
		return nil, fmt.Errorf("regexp of %d bytes; the limit is %d", len(re), maxRegexpLen)
	}
	rx, err := regexp.Compile(re)
	if err != nil {
		return nil, fmt.Errorf("bad regexp: %v", err)
	}
	return rx, nil
}

// parseAttempt starts a response: "attempt N", "attempt N-M", "attempt N-"
// or "attempt *".
func (p *parser) parseAttempt(rest string) error {
	if len(p.stack) > 0 {
		return errors.New("attempt inside a repeat")
	}
	rt, err := p.currentRoute()
	if err != nil {
		return err
	}
	resp := &Response{Line: p.line, Status: defaultStatus, Header: http.Header{}}
	switch {
	case rest == "*":
		resp.From = 1
	default:
		from, to, isRange := strings.Cut(rest, "-")
		a, err := strconv.Atoi(from)
		if err != nil || a < 1 {
			return fmt.Errorf("attempt wants N, N-M, N- or * (attempts count from 1), got %q", rest)
		}
		resp.From, resp.To = a, a
		if isRange {
			resp.To = 0
			if to != "" {
				b, err := strconv.Atoi(to)
				if err != nil || b < a {
					return fmt.Errorf("attempt range %q: want N-M with M ≥ N", rest)
				}
				resp.To = b
			}
		}
	}
	rt.Responses = append(rt.Responses, resp)
	p.resp = resp
	return nil
}

// response returns the response being parsed, creating the implicit
// "attempt *" one of a route without attempt lines.
func (p *parser) response() (*Response, error) {
	if p.resp == nil {
		rt, err := p.currentRoute()
		if err != nil {
			return nil, err
		}
		if len(rt.Responses) > 0 {
			return nil, errors.New("internal: lost response")
		}
		p.resp = &Response{Line: p.line, From: 1, Status: defaultStatus, Header: http.Header{}}
		rt.Responses = append(rt.Responses, p.resp)
	}
	return p.resp, nil
}

func (p *parser) parseResponseSetting(word, rest string) error {
	if len(p.stack) > 0 {
		return fmt.Errorf("%s inside a repeat", word)
	}
	resp, err := p.response()
	if err != nil {
		return err
	}
	if resp.hasSteps {
		return fmt.Errorf("%s must come before the response's first step", word)
	}
	switch word {
	case "status":
		n, err := strconv.Atoi(rest)
		if err != nil || n < 100 || n > 999 {
			return fmt.Errorf("status wants a code from 100 to 999, not %q", rest)
		}
		if n < 200 && n != 0 {
			return fmt.Errorf("status %d is informational: a response needs a final status", n)
		}
		resp.Status = n
	case "header":
		name, value, ok := strings.Cut(rest, ":")
		name = strings.TrimSpace(name)
		value = strings.TrimSpace(value)
		if !ok || !validToken(name) {
			return fmt.Errorf("header wants 'Name: value', got %q", rest)
		}
		if len(value) > MaxHeaderSize {
			return fmt.Errorf("header value of %d bytes; the limit is %d", len(value), MaxHeaderSize)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return errors.New("a header value cannot hold CR, LF or NUL")
		}
		// An empty value removes the header (a response with no
		// Content-Type at all).
		resp.Header[http.CanonicalHeaderKey(name)] = append(resp.Header[http.CanonicalHeaderKey(name)], value)
	case "gzip", "resume":
		if rest != "" {
			return fmt.Errorf("%s takes no argument, got %q", word, rest)
		}
		if word == "gzip" {
			resp.Gzip = true
		} else {
			resp.Resume = true
		}
	}
	return nil
}

// addStep adds a step to the open repeat or the response.
func (p *parser) addStep(st step) error {
	st.line = p.line
	return p.appendStep(st)
}

// appendStep adds a parsed step (or a closed repeat) to the open repeat, or
// to the response.
func (p *parser) appendStep(st step) error {
	if len(p.stack) > 0 {
		top := p.stack[len(p.stack)-1]
		top.body = append(top.body, st)
		return nil
	}
	resp, err := p.response()
	if err != nil {
		return err
	}
	resp.steps = append(resp.steps, st)
	resp.hasSteps = true
	return nil
}

func parseStep(word, rest string) (step, error) {
	noArg := func(k stepKind) (step, error) {
		if rest != "" {
			return step{}, fmt.Errorf("%s takes no argument, got %q", word, rest)
		}
		return step{kind: k}, nil
	}
	switch word {
	case "bytes":
		s, err := strconv.Unquote(rest)
		if err != nil || !strings.HasPrefix(rest, `"`) {
			return step{}, fmt.Errorf("bytes wants a double-quoted Go string (\\r, \\n, \\xff escapes), got %s", rest)
		}
		return step{kind: stepBytes, text: s}, nil
	case "bom":
		st, err := noArg(stepBytes)
		st.text = "\xEF\xBB\xBF"
		return st, err
	case "drop":
		return noArg(stepDrop)
	case "hold":
		return noArg(stepHold)
	case "pause":
		lo, hi, isRange := strings.Cut(rest, "..")
		d1, err := parseDuration(word, lo)
		if err != nil {
			return step{}, err
		}
		d2 := d1
		if isRange {
			if d2, err = parseDuration(word, hi); err != nil {
				return step{}, err
			}
			if d2 < d1 {
				return step{}, fmt.Errorf("pause %s: the range ends before it starts", rest)
			}
		}
		return step{kind: stepPause, d1: d1, d2: d2}, nil
	case "trickle":
		d, err := parseDuration(word, rest)
		return step{kind: stepTrickle, d1: d}, err
	case "lineend":
		ends := map[string]string{"lf": "\n", "crlf": "\r\n", "cr": "\r"}
		end, ok := ends[strings.ToLower(rest)]
		if !ok {
			return step{}, fmt.Errorf("lineend wants lf, crlf or cr, not %q", rest)
		}
		return step{kind: stepLineEnd, text: end}, nil
	case "chunk":
		if rest == "off" {
			return step{kind: stepChunk}, nil
		}
		st := step{kind: stepChunk}
		if r, ok := strings.CutPrefix(rest, "random "); ok {
			st.random, rest = true, strings.TrimSpace(r)
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || n > 1<<20 {
			return step{}, fmt.Errorf("chunk wants N, random N (1 to %d bytes) or off, got %q", 1<<20, rest)
		}
		st.n = n
		return st, nil
	case "bigevent":
		n, err := parseSize(rest)
		if err != nil || n < 1 || n > MaxBigEvent {
			return step{}, fmt.Errorf("bigevent wants a size from 1 to %d bytes, got %q", MaxBigEvent, rest)
		}
		return step{kind: stepBig, n: n}, nil
	case "repeat":
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || n > MaxRepeat {
			return step{}, fmt.Errorf("repeat wants a count from 1 to %d, got %q", MaxRepeat, rest)
		}
		return step{kind: stepRepeat, n: n}, nil
	}
	return step{}, fmt.Errorf("unknown directive %q (see docs/mock.md)", word)
}

func parseDuration(word, s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s wants a duration such as 250ms or 2s, got %q", word, s)
	}
	if d > MaxPause {
		return 0, fmt.Errorf("%s %s is longer than the limit of %s", word, s, MaxPause)
	}
	return d, nil
}

// parseSize parses a byte count: 1000, 64KiB, 2MiB.
func parseSize(s string) (int, error) {
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1000}, {"MB", 1000_000}, {"B", 1}} {
		if t, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = t, u.mult
			break
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > MaxBigEvent {
		return 0, errors.New("bad size")
	}
	return n * mult, nil
}

// validToken reports whether s is an HTTP token (a method or header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
