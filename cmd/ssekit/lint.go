package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ssekit/sse/debugger"
)

const lintUsage = `Usage: ssekit lint [flags] URL

Connects to an SSE endpoint, watches it for --duration (or --max-events),
and reports what is wrong or risky, each finding with a severity, the
reason and the fix:

  status, content-type   the response an EventSource accepts (200, text/event-stream, UTF-8)
  content-length         a stream with a length is not a stream
  cache-control          Cache-Control: no-cache, so no cache keeps the stream
  proxy-buffering        X-Accel-Buffering: no, so nginx does not buffer events
  slow-headers           headers held back until the first write
  no-ids                 events without ids: a reconnection cannot resume
  heartbeat              silences longer than --heartbeat, which proxies cut
  retry-invalid/small    retry fields clients ignore, or reconnection storms
  line-endings, utf8     mixed line ends, bytes that are not UTF-8
  buffering              events that arrive in bursts instead of one by one
  event-size             events larger than --max-event-size

It takes the request flags of 'ssekit listen' (-X, -H, -d). Exit status: 0
when nothing reached --fail-on (errors by default), 1 otherwise or when the
connection fails, 2 for a bad command line. For CI.
`

func runLint(ctx context.Context, m *Main, args []string) error {
	opts := listenOptions{headers: http.Header{}}
	fs := flag.NewFlagSet("lint", flag.ContinueOnError)
	addRequestFlags(fs, &opts)
	fs.StringVar(&opts.lastEventID, "last-event-id", "", "send Last-Event-ID: `ID`")
	duration := fs.Duration("duration", debugger.DefaultLintDuration, "watch the stream for `DURATION`")
	fs.IntVar(&opts.maxEvents, "max-events", 0, "stop watching after `N` events (0: no limit)")
	heartbeat := fs.Duration("heartbeat", debugger.DefaultHeartbeat, "the longest silence allowed (`DURATION`) before a heartbeat")
	maxSize := fs.Int("max-event-size", debugger.DefaultMaxEventSize, "report events with more than `BYTES` of data")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	failOn := fs.String("fail-on", "error", "exit 1 when a finding of `SEVERITY` (error or warning) or worse is found")
	rest, err := m.parseFlags(fs, lintUsage, args)
	if err != nil {
		return err
	}
	if opts.url, err = streamURL("lint", rest); err != nil {
		return err
	}
	if *failOn != "error" && *failOn != "warning" {
		return usageErrorf("--fail-on must be error or warning, not %q", *failOn)
	}
	if *duration <= 0 || *heartbeat <= 0 || *maxSize <= 0 || opts.maxEvents < 0 {
		return usageErrorf("--duration, --heartbeat and --max-event-size must be positive, --max-events not negative")
	}
	req, err := m.listenRequest(ctx, &opts)
	if err != nil {
		return err
	}
	rep, err := debugger.Lint(ctx, req, debugger.LintConfig{
		HTTPClient:   m.httpClient(opts.insecure),
		Duration:     *duration,
		MaxEvents:    opts.maxEvents,
		Heartbeat:    *heartbeat,
		MaxEventSize: *maxSize,
	})
	if err != nil {
		if ctx.Err() != nil {
			return context.Canceled
		}
		return fmt.Errorf("cannot connect to %s: %s", opts.url, netReason(errors.Unwrap(err)))
	}
	if *asJSON {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if rep.Findings == nil {
			rep.Findings = []debugger.Finding{}
		}
		enc.Encode(rep)
		m.Stdout.Write(b.Bytes())
	} else {
		color, _ := m.colorEnabled("auto")
		m.Stdout.Write(formatLint(rep, color))
	}
	errs, warns := rep.Count(debugger.SeverityError), rep.Count(debugger.SeverityWarning)
	if errs > 0 || (*failOn == "warning" && warns > 0) {
		return fmt.Errorf("%s, %s", plural(errs, "error"), plural(warns, "warning"))
	}
	return nil
}

// formatLint writes the report for people: what was observed, then one
// block per finding, worst first.
func formatLint(r *debugger.LintReport, color bool) []byte {
	var b bytes.Buffer
	style := func(s, text string) string {
		if !color {
			return text
		}
		return s + text + styleReset
	}
	fmt.Fprintf(&b, "%s\n", r.URL)
	var facts []string
	if r.Status != 0 {
		facts = append(facts, fmt.Sprintf("%s %d", r.Proto, r.Status))
	}
	if r.TTFB >= 0 {
		facts = append(facts, "headers "+lintMs(r.TTFB))
	}
	if r.FirstEvent >= 0 {
		facts = append(facts, "first event "+lintMs(r.FirstEvent))
	}
	facts = append(facts, fmt.Sprintf("%s, %s, %d bytes in %s", plural(r.Events, "event"), plural(r.Comments, "comment"), r.Bytes, lintMs(r.Observed)))
	if r.Events > 0 || r.Comments > 0 {
		facts = append(facts, "longest silence "+lintMs(r.LongestSilence))
	}
	fmt.Fprintf(&b, "  %s\n  %s\n\n", strings.Join(facts, " · "), style(styleDim, "stopped: "+r.End))
	styles := map[string]string{debugger.SeverityError: "\x1b[1;31m", debugger.SeverityWarning: "\x1b[33m", debugger.SeverityInfo: "\x1b[36m"}
	for _, sev := range []string{debugger.SeverityError, debugger.SeverityWarning, debugger.SeverityInfo} {
		for _, f := range r.Findings {
			if f.Severity != sev {
				continue
			}
			fmt.Fprintf(&b, "%s %s\n", style(styles[sev], fmt.Sprintf("%-7s", sev)), style("\x1b[1m", f.Rule))
			fmt.Fprintf(&b, "        %s\n", sanitize(f.Reason))
			fmt.Fprintf(&b, "        %s %s\n\n", style(styleDim, "fix:"), sanitize(f.Fix))
		}
	}
	fmt.Fprintf(&b, "%s, %s, %s\n", plural(r.Count(debugger.SeverityError), "error"),
		plural(r.Count(debugger.SeverityWarning), "warning"), plural(r.Count(debugger.SeverityInfo), "note"))
	return b.Bytes()
}

func lintMs(v float64) string {
	return formatGap(time.Duration(v * float64(time.Millisecond)))
}
