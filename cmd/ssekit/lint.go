package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/debugger/term"
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
  proxy, proxy-buffers,  the proxy in front, named from its headers (Cloudflare,
  proxy-idle-cut         Caddy, nginx, AWS ALB…), buffering or cutting idle streams,
                         with its recipe in docs/deploying.md

It takes the request flags of 'ssekit listen' (-X, -H, -d). Exit status: 0
when nothing reached --fail-on (errors by default), 1 otherwise or when the
connection fails, 2 for a bad command line. For CI.
`

func runLint(ctx context.Context, m *Main, args []string) error {
	var rf requestFlags
	fs := flag.NewFlagSet("lint", flag.ContinueOnError)
	addRequestFlags(fs, &rf)
	duration := fs.Duration("duration", debugger.DefaultLintDuration, "watch the stream for `DURATION`")
	maxEvents := fs.Int("max-events", 0, "stop watching after `N` events (0: no limit)")
	heartbeat := fs.Duration("heartbeat", debugger.DefaultHeartbeat, "the longest silence allowed (`DURATION`) before a heartbeat")
	maxSize := fs.Int("max-event-size", debugger.DefaultMaxEventSize, "report events with more than `BYTES` of data")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	failOn := fs.String("fail-on", "error", "exit 1 when a finding of `SEVERITY` (error or warning) or worse is found")
	rest, err := m.parseFlags(fs, lintUsage, args)
	if err != nil {
		return err
	}
	url, err := streamURL("lint", rest)
	if err != nil {
		return err
	}
	if *failOn != "error" && *failOn != "warning" {
		return usageErrorf("--fail-on must be error or warning, not %q", *failOn)
	}
	if *duration <= 0 || *heartbeat <= 0 || *maxSize <= 0 || *maxEvents < 0 {
		return usageErrorf("--duration, --heartbeat and --max-event-size must be positive, --max-events not negative")
	}
	spec, err := m.requestSpec(&rf, url)
	if err != nil {
		return err
	}
	req, err := spec.NewRequest(ctx)
	if err != nil {
		return usageErrorf("%v", err)
	}
	rep, err := debugger.Lint(ctx, req, debugger.LintConfig{
		HTTPClient:   m.httpClient(spec.Insecure),
		Duration:     *duration,
		MaxEvents:    *maxEvents,
		Heartbeat:    *heartbeat,
		MaxEventSize: *maxSize,
	})
	if err != nil {
		if ctx.Err() != nil {
			return context.Canceled
		}
		return connectFailure(url, err)
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
		m.Stdout.Write(term.FormatLint(rep, color))
	}
	errs, warns := rep.Count(debugger.SeverityError), rep.Count(debugger.SeverityWarning)
	if errs > 0 || (*failOn == "warning" && warns > 0) {
		return fmt.Errorf("%s, %s", term.Plural(errs, "error"), term.Plural(warns, "warning"))
	}
	return nil
}
