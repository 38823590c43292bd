package expect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssekit/sse"
	"github.com/ssekit/sse/debugger"
)

// Defaults of a zero Config.
const (
	DefaultWithin = 10 * time.Second
	maxSeenIDs    = 100_000 // ids remembered to find duplicates
)

// Config configures Run. The zero value works.
type Config struct {
	// HTTPClient makes the requests. Nil means a client with no overall
	// timeout.
	HTTPClient *http.Client
	// Within is how long the stream is observed at most. Zero means
	// DefaultWithin. The observation ends sooner when every assertion is
	// settled (only events, first-event, status and growing counts can
	// be), at MaxEvents, or when the stream ends for good.
	Within time.Duration
	// MaxEvents ends the observation after that many events (0: no limit).
	MaxEvents int
	// Retry is the reconnection time until the server sets one (see
	// sse.Client.Retry); zero means the client's default.
	Retry time.Duration
	// NoReconnect makes the first end of the stream the end of the
	// observation.
	NoReconnect bool
}

// A Result is the outcome of one assertion.
type Result struct {
	Source    string `json:"source"`
	Assertion string `json:"assertion"`
	Passed    bool   `json:"passed"`
	Reason    string `json:"reason,omitempty"` // why it failed
}

// A Report is what Run observed and the result of every assertion.
type Report struct {
	URL        string   `json:"url"`
	Status     int      `json:"status,omitempty"` // of the first response; 0 when none came
	Events     int      `json:"events"`
	Reconnects int      `json:"reconnects"`
	Observed   float64  `json:"observedMs"`
	End        string   `json:"end"` // why the observation ended
	Failures   int      `json:"failures"`
	Results    []Result `json:"results"`
}

// observation is the state of one Run, fed by the client's goroutine
// (events, connections) and read once at the end.
type observation struct {
	as    []*Assertion
	start time.Time

	mu         sync.Mutex
	status     int // guarded by mu
	reconnects int // guarded by mu
	pendingRe  bool

	events     int
	byType     map[string]int
	matched    map[*Assertion]time.Duration // first match of each event assertion
	first      time.Duration                // of the first event; -1 before it
	last       time.Duration                // of the last event
	maxGap     time.Duration
	gapBefore  int // the event after the longest gap
	prevID     string
	hasPrev    bool
	idErr      map[string]string // ids ascending/unique: first violation
	seen       map[string]bool
	resumes    int      // reconnections followed by an event
	resumeErr  []string // resumption problems
	lastBefore string   // the id before the pending reconnection
	ended      bool     // the stream ended for good (not the observation's time)
	endReason  string
}

// Run observes the stream req asks for and checks the assertions. It
// always returns a report: a stream that fails (a refused connection, a
// 5xx) fails the assertions that needed events, with the reason.
func Run(ctx context.Context, req *http.Request, as []*Assertion, cfg Config) *Report {
	if cfg.Within <= 0 {
		cfg.Within = DefaultWithin
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	o := &observation{
		as: as, start: time.Now(), first: -1,
		byType: map[string]int{}, matched: map[*Assertion]time.Duration{},
		idErr: map[string]string{}, seen: map[string]bool{},
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Within)
	defer cancel()

	var (
		lintRep *debugger.LintReport
		lintErr error
		lintWG  sync.WaitGroup
	)
	if needsLint(as) {
		lreq, err := cloneRequest(ctx, req)
		if err != nil {
			lintErr = err
		} else {
			lintWG.Go(func() {
				lintRep, lintErr = debugger.Lint(ctx, lreq, debugger.LintConfig{HTTPClient: cfg.HTTPClient, Duration: cfg.Within, MaxEvents: cfg.MaxEvents})
			})
		}
	}

	c := &sse.Client{
		HTTPClient:  cfg.HTTPClient,
		Retry:       cfg.Retry,
		NoReconnect: cfg.NoReconnect,
		OnConnect: func(resp *http.Response) {
			o.mu.Lock()
			if o.status == 0 {
				o.status = resp.StatusCode
			}
			o.mu.Unlock()
		},
		OnRetry: func(err error, delay time.Duration) {
			o.mu.Lock()
			o.reconnects++
			if !o.pendingRe {
				o.pendingRe, o.lastBefore = true, o.prevID
			}
			o.mu.Unlock()
		},
	}
	// A first connection that fails ends the observation at once, as it
	// ends listen: a wrong URL says so instead of retrying till the end.
	es := debugger.Connect(c, req.WithContext(ctx))
	end := "the observation time is over"
	for {
		ev, err := es.Next()
		if err != nil {
			if ctx.Err() == nil || !errors.Is(err, context.DeadlineExceeded) {
				o.ended, o.endReason, end = true, debugger.EndReason(err), debugger.EndReason(err)
				var se *sse.StatusError
				if errors.As(err, &se) {
					o.mu.Lock()
					if o.status == 0 {
						o.status = se.StatusCode
					}
					o.mu.Unlock()
				}
			}
			if ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				end = "interrupted"
			}
			break
		}
		o.event(ev, time.Since(o.start))
		if cfg.MaxEvents > 0 && o.events >= cfg.MaxEvents {
			end = fmt.Sprintf("%d events", o.events)
			break
		}
		if o.settled() && !needsLint(as) {
			end = "every assertion was met"
			break
		}
	}
	observed := time.Since(o.start)
	es.Close()
	if needsLint(as) {
		lintWG.Wait()
	}
	cancel()

	rep := &Report{URL: req.URL.String(), Events: o.events, Observed: ms(observed), End: end}
	o.mu.Lock()
	rep.Status, rep.Reconnects = o.status, o.reconnects
	o.mu.Unlock()
	for _, a := range as {
		reason := o.check(a, observed, rep, lintRep, lintErr)
		rep.Results = append(rep.Results, Result{Source: a.Source, Assertion: a.Text, Passed: reason == "", Reason: reason})
		if reason != "" {
			rep.Failures++
		}
	}
	return rep
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func needsLint(as []*Assertion) bool {
	for _, a := range as {
		if a.Kind == KindLint {
			return true
		}
	}
	return false
}

// cloneRequest copies req for a second connection, its body included.
func cloneRequest(ctx context.Context, req *http.Request) (*http.Request, error) {
	r := req.Clone(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, errors.New("expect: lint needs a request body that can be sent twice")
		}
		b, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = b
	}
	return r, nil
}

// event takes one dispatched event.
func (o *observation) event(ev sse.Event, t time.Duration) {
	o.mu.Lock()
	afterReconnect := o.pendingRe
	o.pendingRe = false
	lastBefore := o.lastBefore
	o.mu.Unlock()

	o.events++
	o.byType[ev.Type]++
	prevT := o.last
	if o.first < 0 {
		o.first, prevT = t, 0
	}
	if gap := t - prevT; gap > o.maxGap {
		o.maxGap, o.gapBefore = gap, o.events
	}
	o.last = t
	for _, a := range o.as {
		if a.Kind != KindEvent {
			continue
		}
		if _, done := o.matched[a]; done {
			continue
		}
		if (a.typ == "*" || a.typ == ev.Type) && (a.match == nil || a.match.matches(ev.Data)) {
			o.matched[a] = t
		}
	}
	o.checkIDs(ev.ID)
	if afterReconnect {
		o.resumes++
		switch {
		case ev.ID != "" && o.seen[ev.ID]:
			o.addResumeErr(fmt.Sprintf("after reconnection %d the event with id %q came again (a duplicate)", o.resumes, ev.ID))
		case lastBefore != "":
			a, errA := strconv.ParseInt(lastBefore, 10, 64)
			b, errB := strconv.ParseInt(ev.ID, 10, 64)
			if errA == nil && errB == nil && b != a+1 {
				o.addResumeErr(fmt.Sprintf("after reconnection %d id %d follows %d (lost %s)", o.resumes, b, a, lostRange(a, b)))
			}
		}
	}
	if ev.ID != "" && len(o.seen) < maxSeenIDs {
		o.seen[ev.ID] = true
	}
	o.prevID, o.hasPrev = ev.ID, true
}

func lostRange(a, b int64) string {
	switch {
	case b <= a:
		return "nothing, but went back"
	case b == a+2:
		return strconv.FormatInt(a+1, 10)
	}
	return fmt.Sprintf("%d to %d", a+1, b-1)
}

func (o *observation) addResumeErr(s string) {
	if len(o.resumeErr) < 3 {
		o.resumeErr = append(o.resumeErr, s)
	}
}

// checkIDs records the first violation of each ids order.
func (o *observation) checkIDs(id string) {
	n := o.events
	// An event without an id field carries the previous one: a repeat too.
	if _, bad := o.idErr["unique"]; !bad && id != "" && o.seen[id] {
		o.idErr["unique"] = fmt.Sprintf("event %d repeats id %q", n, id)
	}
	if _, bad := o.idErr["ascending"]; bad {
		return
	}
	switch {
	case id == "":
		o.idErr["ascending"] = fmt.Sprintf("event %d has no id", n)
	case o.hasPrev && !idLess(o.prevID, id):
		o.idErr["ascending"] = fmt.Sprintf("event %d: id %q after %q", n, id, o.prevID)
	}
}

// idLess orders ids as integers when both are, else as strings.
func idLess(a, b string) bool {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}

// settled reports whether every assertion already passed for good.
func (o *observation) settled() bool {
	for _, a := range o.as {
		switch a.Kind {
		case KindEvent:
			t, ok := o.matched[a]
			if !ok || (a.within > 0 && t > a.within) {
				return false
			}
		case KindFirstEvent:
			if o.first < 0 || o.first > a.within {
				return false
			}
		case KindStatus:
			o.mu.Lock()
			ok := o.status == a.n
			o.mu.Unlock()
			if !ok {
				return false
			}
		case KindCount:
			if (a.op != ">=" && a.op != ">") || !compare(o.count(a.typ), a.op, a.n) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (o *observation) count(typ string) int {
	if typ == "*" {
		return o.events
	}
	return o.byType[typ]
}

// check returns why a failed, or "" when it passed.
func (o *observation) check(a *Assertion, observed time.Duration, rep *Report, lint *debugger.LintReport, lintErr error) string {
	ended := ""
	if o.ended {
		ended = "; " + o.endReason
	}
	switch a.Kind {
	case KindEvent:
		t, ok := o.matched[a]
		within := a.within
		if within == 0 {
			within = observed
		}
		switch {
		case !ok:
			what := "no event"
			if a.typ != "*" {
				what = fmt.Sprintf("no event of type %q", a.typ)
			}
			if a.match != nil {
				what += " whose data matched"
			}
			return fmt.Sprintf("%s in %s (%s, %d of that type)%s", what, round(within), eventsSeen(o.events), o.count(a.typ), ended)
		case t > within:
			return fmt.Sprintf("the first match came after %s, later than %s", round(t), round(within))
		}
	case KindCount:
		if got := o.count(a.typ); !compare(got, a.op, a.n) {
			return fmt.Sprintf("got %d; want %s %d%s", got, a.op, a.n, ended)
		}
	case KindIDs:
		if o.events == 0 {
			return "no event to check" + ended
		}
		if msg := o.idErr[a.order]; msg != "" {
			return msg
		}
	case KindMaxGap:
		if o.events == 0 {
			return fmt.Sprintf("no event in %s%s", round(observed), ended)
		}
		if o.maxGap > a.gap {
			where := fmt.Sprintf("before event %d", o.gapBefore)
			if o.gapBefore == 1 {
				where = "before the first event"
			}
			return fmt.Sprintf("a gap of %s %s; want at most %s", round(o.maxGap), where, round(a.gap))
		}
		if !o.ended && rep.End == "the observation time is over" && observed-o.last > a.gap {
			return fmt.Sprintf("no event in the last %s of the observation; want a gap of at most %s", round(observed-o.last), round(a.gap))
		}
	case KindFirstEvent:
		switch {
		case o.first < 0:
			return fmt.Sprintf("no event in %s%s", round(observed), ended)
		case o.first > a.within:
			return fmt.Sprintf("the first event came after %s; want within %s", round(o.first), round(a.within))
		}
	case KindResume:
		if len(o.resumeErr) > 0 {
			return strings.Join(o.resumeErr, "; ")
		}
		if o.resumes == 0 {
			return fmt.Sprintf("no reconnection followed by an event in %s: nothing to check%s", round(observed), ended)
		}
	case KindReconnects:
		if !compare(rep.Reconnects, a.op, a.n) {
			return fmt.Sprintf("got %d; want %s %d", rep.Reconnects, a.op, a.n)
		}
	case KindStatus:
		if rep.Status != a.n {
			if rep.Status == 0 {
				return "no response" + ended
			}
			return fmt.Sprintf("got %d; want %d", rep.Status, a.n)
		}
	case KindLint:
		return lintFailure(a, lint, lintErr)
	}
	return ""
}

func lintFailure(a *Assertion, lint *debugger.LintReport, err error) string {
	if err != nil {
		return "lint: " + err.Error()
	}
	if lint == nil {
		return "lint did not run"
	}
	want := map[string]bool{}
	for _, r := range a.rules {
		want[r] = true
	}
	var found []string
	for _, f := range lint.Findings {
		if (len(want) == 0 && f.Severity == debugger.SeverityError) || want[f.Rule] {
			found = append(found, fmt.Sprintf("%s (%s): %s", f.Rule, f.Severity, f.Reason))
		}
	}
	sort.Strings(found)
	return strings.Join(found, "; ")
}

func eventsSeen(n int) string {
	if n == 1 {
		return "1 event seen"
	}
	return fmt.Sprintf("%d events seen", n)
}

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.String()
}
