package expect_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/sse/expect"
	"github.com/ssekit/sse/ssetest"
)

// Streams the assertions are checked against.
const (
	// good: typed JSON events with ascending ids, a comment heartbeat.
	good = `route GET /
> retry: 20
> id: 1
> event: delta
> data: {"choices":[{"delta":{"content":"Hel"}}],"n":1}
>
> id: 2
> event: delta
> data: {"choices":[{"delta":{"content":"lo"}}],"n":2}
>
> id: 3
> data: done
>
hold
`
	// slow: a first event late, then a long gap.
	slow = `route GET /
pause 800ms
> id: 1
> data: late
>
pause 400ms
> id: 2
> data: after a gap
>
hold
`
	// gappy: a silence of 1.5 s between two events.
	gappy = "route GET /\n> data: a\n>\npause 1500ms\n> data: b\n>\nhold\n"
	// disordered: ids go back and repeat.
	disordered = `route GET /
> id: 2
> data: a
>
> id: 1
> data: b
>
> data: inherits 1
>
hold
`
	// resumes: each connection serves one more event and drops; each
	// reconnection resumes after Last-Event-ID.
	resumes = `route GET /
attempt 1
> retry: 5
> id: 1
> data: 1
>
drop
attempt 2
resume
> id: 1
> data: 1
>
> id: 2
> data: 2
>
drop
attempt 3-
resume
> id: 1
> data: 1
>
> id: 2
> data: 2
>
> id: 3
> data: 3
>
hold
`
	// steady: an event every 20 ms.
	steady = "route GET /\nrepeat 1000\n> data: tick\n>\npause 20ms\nend\n"
	// plain: a 200 that is not an event stream.
	plain = "route GET /\nheader Content-Type: text/plain\n> data: x\n>\n"
	// loses: drops and comes back one event further than it should.
	loses = `route GET /
attempt 1
> retry: 5
> id: 1
> data: 1
>
drop
attempt 2-
> retry: 5
> id: 3
> data: 3
>
hold
`
	// duplicates: ignores Last-Event-ID and starts again.
	duplicates = `route GET /
> retry: 5
> id: 1
> data: 1
>
drop
`
	unavailable = "route GET /\nstatus 503\n"
	// noHeaders: no Cache-Control, no id: lint finds things.
	noHeaders = "route GET /\nheader Cache-Control:\n> data: x\n>\nhold\n"
)

func run(t *testing.T, script string, within time.Duration, lines ...string) *expect.Report {
	t.Helper()
	m := ssetest.NewMock(t, script)
	var as []*expect.Assertion
	for i, l := range lines {
		a, err := expect.ParseLine("line "+string(rune('1'+i)), l)
		if err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	req, _ := http.NewRequest(http.MethodGet, m.URL+"/", nil)
	return expect.Run(context.Background(), req, as, expect.Config{HTTPClient: m.Client(), Within: within})
}

// TestAssertions: each assertion passes on a stream that meets it and
// fails, with its reason, on one that does not.
func TestAssertions(t *testing.T) {
	tests := []struct {
		name, assertion string
		pass, fail      string
		reason          string // in the failure
	}{
		{"event type", "event delta", good, slow, `no event of type "delta"`},
		{"event any", "event *", good, unavailable, "503"},
		{"data regexp", "event message data ~ ^done$", good, slow, "whose data matched"},
		{"json equals", `event delta json $.choices[0].delta.content == "lo"`, good, slow, "whose data matched"},
		{"json number", "event delta json $.n == 2", good, disordered, "whose data matched"},
		{"json not equal", `event delta json $.choices[0].delta.content != "xyz"`, good, slow, "whose data matched"},
		{"json regexp", "event delta json $.choices[*].delta.content ~ ^H", good, slow, "whose data matched"},
		{"json exists", "event delta json $.choices exists", good, slow, "whose data matched"},
		{"event within", "event * within 400ms", good, slow, "later than 400ms"},
		{"event within, none", "event * within 200ms", good, unavailable, "503"},
		{"count", "count delta == 2", good, slow, "got 0; want == 2"},
		{"count any", "count >= 3", good, slow, "; want >= 3"},
		{"ids ascending", "ids ascending", good, disordered, `event 2: id "1" after "2"`},
		{"ids unique", "ids unique", good, disordered, `event 3 repeats id "1"`},
		// Gaps of a second and more, so that a loaded machine's pauses
		// (hundreds of ms) do not count.
		{"max gap", "max-gap 1s", steady, gappy, "a gap of"},
		{"max gap at the end", "max-gap 1s", steady, good, "no event in the last"},
		{"first event", "first-event within 400ms", good, slow, "the first event came after"},
		{"resume", "resume", resumes, good, "no reconnection"},
		{"resume loss", "resume", resumes, loses, "lost 2"},
		{"resume duplicate", "resume", resumes, duplicates, "came again (a duplicate)"},
		{"reconnects", "reconnects == 0", good, resumes, "want == 0"},
		{"status", "status 200", good, unavailable, "got 503; want 200"},
		{"lint rule", "lint cache-control", good, noHeaders, "cache-control"},
		{"lint errors", "lint", good, plain, "content-type (error)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			within := time.Second
			if strings.HasPrefix(tt.assertion, "max-gap") || strings.Contains(tt.assertion, "within") {
				within = 2500 * time.Millisecond
			}
			if r := run(t, tt.pass, within, tt.assertion); r.Failures != 0 {
				t.Errorf("on the passing stream: %+v", r.Results)
			}
			r := run(t, tt.fail, within, tt.assertion)
			if r.Failures != 1 || !strings.Contains(r.Results[0].Reason, tt.reason) {
				t.Errorf("on the failing stream: %+v; want a failure containing %q", r.Results, tt.reason)
			}
		})
	}
}

// TestEarlyEnd: when every assertion is met the observation ends at once,
// not at its time.
func TestEarlyEnd(t *testing.T) {
	r := run(t, good, time.Minute, "event delta", "count >= 2", "status 200", "first-event within 10s")
	if r.Failures != 0 || r.End != "every assertion was met" {
		t.Errorf("got %+v (end %q); want every assertion met, at once", r.Results, r.End)
	}
}

// TestParseErrors: a bad assertion is refused with where it was and why.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"frob", "unknown assertion"},
		{"event", "event wants a TYPE"},
		{"event delta json $[ == 1", "bad JSONPath"},
		{"event delta json $.a", "wants ~ REGEXP"},
		{"event delta data == x", "data wants ~ REGEXP"},
		{"event delta data ~ (", "bad regexp"},
		{"event delta within soon", "within"},
		{"count delta => 3", "operator"},
		{"count delta >= -1", "want a count"},
		{"ids sideways", "ascending or unique"},
		{"max-gap 0s", "positive duration"},
		{"first-event 1s", "within DURATION"},
		{"status 42", "status wants"},
		{"resume now", "no argument"},
		{"lint no-such-rule", "unknown lint rule"},
	} {
		_, err := expect.ParseLine("x:1", tc.text)
		if err == nil || !errors.Is(err, expect.ErrAssertion) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "x:1") {
			t.Errorf("ParseLine(%q): %v; want an ErrAssertion naming x:1 and %q", tc.text, err, tc.want)
		}
	}
	_, err := expect.Parse("checks.txt", []byte("# comment\n\nevent delta\ncount >> 1\n"))
	if err == nil || !strings.Contains(err.Error(), "checks.txt:4") {
		t.Errorf("Parse: %v; want checks.txt:4", err)
	}
}

// TestJUnit: the JUnit XML reads back with a case per assertion and a
// failure for each that failed.
func TestJUnit(t *testing.T) {
	r := run(t, good, time.Second, "event delta", "count == 5")
	var b bytes.Buffer
	if err := r.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suite    struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if doc.Tests != 2 || doc.Failures != 1 || len(doc.Suite.Cases) != 2 {
		t.Fatalf("got %+v; want 2 tests, 1 failure", doc)
	}
	if c := doc.Suite.Cases[0]; c.Name != "event delta" || c.Failure != nil {
		t.Errorf("case 1: %+v; want event delta, passed", c)
	}
	if c := doc.Suite.Cases[1]; c.Failure == nil || !strings.Contains(c.Failure.Message, "got 3; want == 5") {
		t.Errorf("case 2: %+v; want a failure saying got 3", c)
	}
}

// TestLintRules: the rules expect knows are exactly those debugger.Lint
// reports, so that a misspelt rule is refused instead of always passing.
func TestLintRules(t *testing.T) {
	src, err := os.ReadFile("../debugger/lint.go")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, m := range regexp.MustCompile(`add\(Severity[A-Za-z]+, "([a-z-]+)"`).FindAllStringSubmatch(string(src), -1) {
		found[m[1]] = true
	}
	var rules []string
	for r := range found {
		rules = append(rules, r)
	}
	slices.Sort(rules)
	if !slices.Equal(rules, expect.LintRules) {
		t.Errorf("debugger.Lint reports %q; expect.LintRules is %q", rules, expect.LintRules)
	}
}

// TestConnectionRefused: a first connection that fails ends the
// observation at once, each assertion failing with the reason.
func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	a, _ := expect.ParseLine("x", "event *")
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	r := expect.Run(context.Background(), req, []*expect.Assertion{a}, expect.Config{Within: time.Minute})
	if r.Failures != 1 || !strings.Contains(r.Results[0].Reason, "connection failed") || r.Observed > 30_000 {
		t.Errorf("got %+v after %.0f ms; want one failure saying the connection failed, at once", r.Results, r.Observed)
	}
}
