package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ssekit/sse/debugger/term"
	"github.com/ssekit/sse/expect"
)

const expectUsage = `Usage: ssekit expect [flags] --expect 'ASSERTION'... [-f FILE] URL

Watches an SSE endpoint and checks assertions on it, for CI: exit 0 when
every assertion holds, 1 with one line per failure, 2 for a bad command
line or assertion. --json prints the report as one JSON object instead;
--junit FILE also writes it as JUnit XML.

Assertions (one per --expect, or one a line in FILE; docs/expect.md):

  event TYPE [data ~ REGEXP | json PATH (~ REGEXP | == VALUE | != VALUE | exists)] [within D]
  count [TYPE] OP N          OP is ==, !=, <, <=, > or >=; TYPE * is any
  ids ascending | ids unique
  max-gap D                  no silence between events longer than D
  first-event within D
  resume                     reconnections resume without loss or duplicate
  reconnects OP N
  status CODE
  lint [RULE...]             no lint error (or none of these rules); a second connection

TYPE is the event type ("message" when the stream names none; * for any),
PATH is an RFC 9535 JSONPath on the event's data ($.choices[0].delta.content).
The stream is watched for --within at most, less when every assertion is met.
`

func runExpect(ctx context.Context, m *Main, args []string) error {
	var rf requestFlags
	fs := flag.NewFlagSet("expect", flag.ContinueOnError)
	addRequestFlags(fs, &rf)
	var lines []struct{ source, text string }
	fs.Func("expect", "an `ASSERTION` (repeatable)", func(s string) error {
		lines = append(lines, struct{ source, text string }{fmt.Sprintf("--expect %d", len(lines)+1), s})
		return nil
	})
	var files []string
	fs.Func("f", "read assertions from `FILE`, one a line (repeatable)", func(s string) error {
		files = append(files, s)
		return nil
	})
	firstEvent := fs.Duration("first-event", 0, "shorthand for --expect 'first-event within `DURATION`'")
	maxGap := fs.Duration("max-gap", 0, "shorthand for --expect 'max-gap `DURATION`'")
	lint := fs.Bool("lint", false, "shorthand for --expect lint: no lint error")
	within := fs.Duration("within", expect.DefaultWithin, "watch the stream for `DURATION` at most")
	maxEvents := fs.Int("max-events", 0, "stop watching after `N` events (0: no limit)")
	retry := fs.Duration("retry", 0, "wait `DURATION` before a reconnection until the server sets retry (0: the client's default)")
	noReconnect := fs.Bool("no-reconnect", false, "end the observation when the stream ends")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	junit := fs.String("junit", "", "also write the report as JUnit XML to `FILE`")
	rest, err := m.parseFlags(fs, expectUsage, args)
	if err != nil {
		return err
	}
	url, err := streamURL("expect", rest)
	if err != nil {
		return err
	}
	if *within <= 0 || *maxEvents < 0 || *retry < 0 || *firstEvent < 0 || *maxGap < 0 {
		return usageErrorf("--within must be positive; --max-events, --retry, --first-event and --max-gap not negative")
	}
	if *firstEvent > 0 {
		lines = append(lines, struct{ source, text string }{"--first-event", "first-event within " + firstEvent.String()})
	}
	if *maxGap > 0 {
		lines = append(lines, struct{ source, text string }{"--max-gap", "max-gap " + maxGap.String()})
	}
	if *lint {
		lines = append(lines, struct{ source, text string }{"--lint", "lint"})
	}
	var as []*expect.Assertion
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			return usageErrorf("%v", err)
		}
		fileAs, err := expect.Parse(name, b)
		if err != nil {
			return usageErrorf("%v", err)
		}
		as = append(as, fileAs...)
	}
	for _, l := range lines {
		a, err := expect.ParseLine(l.source, l.text)
		if err != nil {
			return usageErrorf("%v", err)
		}
		as = append(as, a)
	}
	if len(as) == 0 {
		return usageErrorf("no assertion: give --expect, -f FILE, --first-event, --max-gap or --lint (see 'ssekit expect --help')")
	}
	spec, err := m.requestSpec(&rf, url)
	if err != nil {
		return err
	}
	req, err := spec.NewRequest(ctx)
	if err != nil {
		return usageErrorf("%v", err)
	}
	rep := expect.Run(ctx, req, as, expect.Config{
		HTTPClient:  m.httpClient(spec.Insecure),
		Within:      *within,
		MaxEvents:   *maxEvents,
		Retry:       *retry,
		NoReconnect: *noReconnect,
	})
	if ctx.Err() != nil {
		return context.Canceled
	}
	if *junit != "" {
		var b bytes.Buffer
		if err := rep.WriteJUnit(&b); err != nil {
			return err
		}
		if err := os.WriteFile(*junit, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing the JUnit report: %w", err)
		}
	}
	if *asJSON {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(rep)
		m.Stdout.Write(b.Bytes())
	} else {
		var b bytes.Buffer
		for _, r := range rep.Results {
			if !r.Passed {
				fmt.Fprintf(&b, "FAIL %s: %s: %s\n", r.Source, r.Assertion, oneLine(r.Reason))
			}
		}
		m.Stdout.Write(b.Bytes())
	}
	seen := fmt.Sprintf("%s and %s in %s; %s", term.Plural(rep.Events, "event"), term.Plural(rep.Reconnects, "reconnection"),
		(time.Duration(rep.Observed * float64(time.Millisecond))).Round(time.Millisecond), rep.End)
	if rep.Failures > 0 {
		return fmt.Errorf("%d of %s failed (%s)", rep.Failures, term.Plural(len(as), "assertion"), seen)
	}
	m.logf("expect", "%s passed (%s)", term.Plural(len(as), "assertion"), seen)
	return nil
}
