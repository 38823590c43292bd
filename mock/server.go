package mock

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of a zero Options.
const (
	DefaultMaxConnections = 64
	DefaultMaxBytes       = 64 << 20         // body bytes of one response
	DefaultMaxDuration    = 10 * time.Minute // life of one response
	maxSteps              = 1_000_000        // steps run for one response, repeats unrolled
	maxWrites             = 1 << 20          // writes of one response (chunk 1 costs one per byte)
	maxRequestBody        = 1 << 20          // bytes of a request body read for matching
	maxServedLog          = 1000             // entries Served keeps
	writeTimeout          = 10 * time.Second // one write to a stalled client
	bigPiece              = 32 << 10         // a bigevent is generated in pieces of this size
)

// Errors that end one response early.
var (
	errDrop  = errors.New("mock: drop")  // the script drops the connection
	errFound = errors.New("mock: found") // the resume point exists (dry run)
	// ErrLimit ends a response that passed a limit of Options; the
	// connection is dropped and the reason logged.
	ErrLimit = errors.New("mock: limit reached")
)

// Options configures a Server. The zero value works.
type Options struct {
	// Seed replaces the script's seed when non-zero.
	Seed uint64
	// MaxConnections bounds the responses served at once; past it a
	// request gets 503. Zero means DefaultMaxConnections.
	MaxConnections int
	// MaxBytes bounds the body bytes of one response. Zero means
	// DefaultMaxBytes.
	MaxBytes int64
	// MaxDuration bounds how long one response lasts (pauses and hold
	// included). Zero means DefaultMaxDuration.
	MaxDuration time.Duration
	// Logger logs each request and why a response ended early. Nil means
	// no logging.
	Logger *slog.Logger
}

// A Served is one request a Server answered, for tests to check what a
// client did (how often it reconnected, with which Last-Event-ID).
type Served struct {
	Method      string
	Path        string
	RouteLine   int // the line of the route that answered; 0 for none
	Attempt     int // of that route, from 1
	LastEventID string
	Status      int
}

// A Server serves a Script over HTTP. It counts the attempts of each
// route (every request a route matched), which selects the response.
type Server struct {
	script *Script
	opts   Options
	sem    chan struct{}

	mu       sync.Mutex
	attempts map[*Route]int // guarded by mu
	served   []Served       // guarded by mu
}

// New returns a Server for s.
func New(s *Script, opts Options) *Server {
	if opts.Seed == 0 {
		opts.Seed = s.Seed
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxDuration <= 0 {
		opts.MaxDuration = DefaultMaxDuration
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{script: s, opts: opts, sem: make(chan struct{}, opts.MaxConnections), attempts: map[*Route]int{}}
}

// Served returns the requests answered so far, oldest first (the last
// 1,000).
func (s *Server) Served() []Served {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Served(nil), s.served...)
}

// Reset forgets the attempt counts and the served requests.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts, s.served = map[*Route]int{}, nil
}

func (s *Server) logServed(sv Served) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.served) == maxServedLog {
		s.served = append(s.served[:0], s.served[1:]...)
	}
	s.served = append(s.served, sv)
}

// ServeHTTP answers r with the first route that matches it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		http.Error(w, "mock: too many connections", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		http.Error(w, "mock: reading the request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxRequestBody {
		http.Error(w, fmt.Sprintf("mock: request body over %d bytes", maxRequestBody), http.StatusRequestEntityTooLarge)
		return
	}
	sv := Served{Method: r.Method, Path: r.URL.Path, LastEventID: r.Header.Get("Last-Event-ID")}
	rt := s.route(r, body)
	if rt == nil {
		sv.Status = http.StatusNotFound
		s.logServed(sv)
		s.opts.Logger.Info("no route", "method", r.Method, "path", r.URL.Path)
		http.Error(w, fmt.Sprintf("mock: no route of %s matches %s %s", s.script.Name, r.Method, r.URL.Path), http.StatusNotFound)
		return
	}
	s.mu.Lock()
	s.attempts[rt]++
	attempt := s.attempts[rt]
	s.mu.Unlock()
	resp := rt.response(attempt)
	sv.RouteLine, sv.Attempt, sv.Status = rt.Line, attempt, resp.Status

	ctx, cancel := context.WithTimeout(r.Context(), s.opts.MaxDuration)
	defer cancel()
	run := &run{
		ctx:     ctx,
		rng:     rand.New(rand.NewPCG(s.opts.Seed, uint64(attempt))), // the same bytes for the same seed and attempt
		lineEnd: "\n",
		attempt: attempt,
		limits:  s.opts,
	}
	if resp.Resume && sv.LastEventID != "" {
		// A dry run finds whether the id is in the stream; an unknown id
		// gets the whole stream, as a hub gives its whole history.
		dry := *run
		dry.resumeID, dry.skipping, dry.dry = sv.LastEventID, true, true
		dry.rng = rand.New(rand.NewPCG(s.opts.Seed, uint64(attempt)))
		if err := dry.steps(resp.steps, 0); errors.Is(err, errFound) {
			run.resumeID, run.skipping = sv.LastEventID, true
		}
	}

	h := w.Header()
	h.Set("Content-Type", eventStream)
	h.Set("Cache-Control", "no-cache")
	for name, values := range resp.Header {
		if len(values) == 1 && values[0] == "" {
			h[name] = nil // no such header at all (and no sniffing)
			continue
		}
		h[name] = append([]string(nil), values...) // the script's slice is shared by every response
	}
	if resp.Gzip {
		h.Set("Content-Encoding", "gzip")
	}
	s.logServed(sv)
	s.opts.Logger.Info("request", "method", r.Method, "path", r.URL.Path, "route", rt.Line, "attempt", attempt, "status", resp.Status, "last-event-id", sv.LastEventID)
	w.WriteHeader(resp.Status)
	if !bodyAllowed(resp.Status) || r.Method == http.MethodHead {
		return
	}
	run.rc = http.NewResponseController(w)
	run.out = w
	if resp.Gzip {
		run.gz = gzip.NewWriter(w)
		run.out = run.gz
	}
	err = run.steps(resp.steps, 0)
	if err == nil && run.gz != nil {
		err = run.gz.Close()
	}
	switch {
	case err == nil:
		run.flush()
	case errors.Is(err, errDrop):
		run.flush()
		panic(http.ErrAbortHandler) // the connection ends without a proper end of body
	case errors.Is(err, ErrLimit):
		s.opts.Logger.Warn("response ended at a limit", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified && status >= 200
}

// route returns the first route matching r, or nil.
func (s *Server) route(r *http.Request, body []byte) *Route {
	for _, rt := range s.script.Routes {
		if rt.matches(r, body) {
			return rt
		}
	}
	return nil
}

func (rt *Route) matches(r *http.Request, body []byte) bool {
	if rt.Method != anyMethod && rt.Method != r.Method {
		return false
	}
	if rt.Prefix && !strings.HasPrefix(r.URL.Path, rt.Path) || !rt.Prefix && r.URL.Path != rt.Path {
		return false
	}
	for _, m := range rt.matchers {
		if !m.match(r, body) {
			return false
		}
	}
	return true
}

// response returns the first response whose range holds attempt, or the
// last one when none does.
func (rt *Route) response(attempt int) *Response {
	for _, r := range rt.Responses {
		if r.From <= attempt && (r.To == 0 || attempt <= r.To) {
			return r
		}
	}
	return rt.Responses[len(rt.Responses)-1]
}

// run is one response's execution of the steps.
type run struct {
	ctx     context.Context
	out     io.Writer
	gz      *gzip.Writer
	rc      *http.ResponseController
	rng     *rand.Rand
	limits  Options
	attempt int

	lineEnd string
	chunk   int // 0: one write per step
	random  bool
	trickle time.Duration
	wrote   bool

	bytes  int64
	writes int
	nsteps int

	// Resumption: while skipping, nothing is written and nothing waited
	// for, until the block that dispatches an event with resumeID ends.
	dry          bool // only find the resume point
	skipping     bool
	resumeID     string
	pendingID    string // the id field last seen (the last-event-ID buffer)
	carry        []byte // the start of a line not ended yet
	lastCR       bool   // the last line ended with a CR: a leading LF is its CRLF
	fedLine      bool   // a line was fed: a BOM now is content
	blockHasData bool
}

// steps runs list; n is the iteration of the innermost repeat (for {n}).
func (r *run) steps(list []step, n int) error {
	for i := range list {
		st := &list[i]
		if r.nsteps++; r.nsteps > maxSteps {
			return fmt.Errorf("%w: more than %d steps", ErrLimit, maxSteps)
		}
		if err := r.ctx.Err(); err != nil {
			return err
		}
		var err error
		switch st.kind {
		case stepLine:
			err = r.send(r.expand(st.text, n) + r.lineEnd)
		case stepBytes:
			err = r.send(r.expand(st.text, n))
		case stepPause:
			d := st.d1
			if st.d2 > st.d1 {
				d += time.Duration(r.rng.Int64N(int64(st.d2-st.d1) + 1))
			}
			err = r.sleep(d)
		case stepLineEnd:
			r.lineEnd = st.text
		case stepChunk:
			r.chunk, r.random = st.n, st.random
		case stepTrickle:
			r.trickle = st.d1
		case stepBig:
			err = r.big(st.n)
		case stepRepeat:
			for k := 1; k <= st.n && err == nil; k++ {
				err = r.steps(st.body, k)
			}
		case stepDrop:
			if !r.skipping {
				return errDrop
			}
		case stepHold:
			if !r.skipping {
				<-r.ctx.Done()
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// expand replaces {n} (the repeat's iteration) and {attempt}.
func (r *run) expand(s string, n int) string {
	if !strings.Contains(s, "{") {
		return s
	}
	s = strings.ReplaceAll(s, "{n}", strconv.Itoa(n))
	return strings.ReplaceAll(s, "{attempt}", strconv.Itoa(r.attempt))
}

// send sends the bytes of a line or bytes step. While skipping it follows
// their lines instead (ids, data, blank lines) and sends only what comes
// after the resume point, when this step holds it.
func (r *run) send(s string) error {
	if !r.skipping {
		if r.lastCR { // the resume point ended with a CR: its LF was skipped too
			r.lastCR = false
			s = strings.TrimPrefix(s, "\n")
		}
		return r.emit(s)
	}
	off := r.feed(s)
	if off < 0 {
		return r.count(len(s))
	}
	if r.dry {
		return errFound
	}
	if err := r.count(off); err != nil {
		return err
	}
	r.skipping = false
	return r.emit(s[off:])
}

// feed follows the lines of s, CR, LF and CRLF ends alike, a line's start
// carried over from the previous step (up to maxCarry bytes: enough for
// a field name and an id). It returns the offset just after the blank
// line that ends the event with resumeID, or -1.
func (r *run) feed(s string) int {
	for i := 0; i < len(s); {
		if r.lastCR && s[i] == '\n' { // the LF of a CRLF split across steps
			r.lastCR = false
			i++
			continue
		}
		r.lastCR = false
		j := strings.IndexAny(s[i:], "\r\n")
		if j < 0 {
			r.carryLine(s[i:])
			return -1
		}
		r.carryLine(s[i : i+j])
		end := i + j + 1
		if s[i+j] == '\r' {
			if end < len(s) && s[end] == '\n' {
				end++
			} else {
				r.lastCR = true
			}
		}
		line := string(r.carry)
		r.carry = r.carry[:0]
		if !r.fedLine {
			line, r.fedLine = strings.TrimPrefix(line, "\uFEFF"), true // one leading BOM
		}
		if r.track(line) {
			return end
		}
		i = end
	}
	return -1
}

const maxCarry = 1 << 10

func (r *run) carryLine(s string) {
	r.carry = append(r.carry, s[:min(len(s), max(0, maxCarry-len(r.carry)))]...)
}

// track takes one line of the stream, for resumption; it reports whether
// the line is the blank one that ends the event with resumeID.
func (r *run) track(line string) bool {
	if line == "" {
		found := r.blockHasData && r.pendingID == r.resumeID
		r.blockHasData = false
		return found
	}
	field, value, _ := strings.Cut(line, ":")
	value = strings.TrimPrefix(value, " ")
	switch field {
	case "id":
		if !strings.Contains(value, "\x00") {
			r.pendingID = value
		}
	case "data":
		r.blockHasData = true
	}
	return false
}

// big sends an event with n bytes of data, generated in pieces.
func (r *run) big(n int) error {
	if err := r.emit("data: "); err != nil {
		return err
	}
	if r.skipping {
		if err := r.count(n); err != nil {
			return err
		}
		n = 0
	}
	piece := strings.Repeat("x", min(n, bigPiece))
	for n > 0 {
		k := min(n, len(piece))
		if err := r.emit(piece[:k]); err != nil {
			return err
		}
		n -= k
	}
	if err := r.emit(r.lineEnd + r.lineEnd); err != nil || !r.skipping {
		return err
	}
	r.blockHasData, r.lastCR = true, false
	if r.track("") {
		if r.dry {
			return errFound
		}
		r.skipping = false
	}
	return nil
}

// count adds n generated bytes, failing past MaxBytes.
func (r *run) count(n int) error {
	if r.bytes += int64(n); r.bytes > r.limits.MaxBytes {
		return fmt.Errorf("%w: more than %d bytes", ErrLimit, r.limits.MaxBytes)
	}
	return nil
}

// emit writes s as the chunk and trickle settings say, flushing each piece.
//
// Skipped bytes count against MaxBytes too: a resumption (and its search
// for the id) generates no more than a fresh response would.
func (r *run) emit(s string) error {
	if err := r.count(len(s)); err != nil || r.skipping || s == "" {
		return err
	}
	for len(s) > 0 {
		k := len(s)
		if r.chunk > 0 {
			size := r.chunk
			if r.random {
				size = 1 + r.rng.IntN(r.chunk)
			}
			k = min(k, size)
		}
		if r.trickle > 0 && r.wrote {
			if err := r.sleep(r.trickle); err != nil {
				return err
			}
		}
		if r.writes++; r.writes > maxWrites {
			return fmt.Errorf("%w: more than %d writes", ErrLimit, maxWrites)
		}
		_ = r.rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // no deadlines: go on
		if _, err := io.WriteString(r.out, s[:k]); err != nil {
			return err
		}
		r.wrote = true
		if err := r.flush(); err != nil {
			return err
		}
		s = s[k:]
	}
	return nil
}

func (r *run) flush() error {
	if r.rc == nil {
		return nil
	}
	if r.gz != nil {
		if err := r.gz.Flush(); err != nil {
			return err
		}
	}
	return r.rc.Flush()
}

// sleep waits d, or not at all while skipping.
func (r *run) sleep(d time.Duration) error {
	if r.skipping || d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}
