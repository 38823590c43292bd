package term

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/ssekit/sse/debugger"
)

// FormatLint writes a lint report for people: what was observed, then one
// block per finding, worst first.
func FormatLint(r *debugger.LintReport, color bool) []byte {
	var b bytes.Buffer
	style := func(s, text string) string { return colored(color, s, text) }
	fmt.Fprintf(&b, "%s\n", Sanitize(r.URL))
	var facts []string
	if r.Status != 0 {
		facts = append(facts, fmt.Sprintf("%s %d", Sanitize(r.Proto), r.Status))
	}
	if r.TTFB >= 0 {
		facts = append(facts, "headers "+lintMs(r.TTFB))
	}
	if r.FirstEvent >= 0 {
		facts = append(facts, "first event "+lintMs(r.FirstEvent))
	}
	facts = append(facts, fmt.Sprintf("%s, %s, %d bytes in %s", Plural(r.Events, "event"), Plural(r.Comments, "comment"), r.Bytes, lintMs(r.Observed)))
	if r.Events > 0 || r.Comments > 0 {
		facts = append(facts, "longest silence "+lintMs(r.LongestSilence))
	}
	fmt.Fprintf(&b, "  %s\n  %s\n\n", strings.Join(facts, " · "), style(styleDim, "stopped: "+Sanitize(r.End)))
	styles := map[string]string{debugger.SeverityError: styleError, debugger.SeverityWarning: styleID, debugger.SeverityInfo: styleInfo}
	for _, sev := range []string{debugger.SeverityError, debugger.SeverityWarning, debugger.SeverityInfo} {
		for _, f := range r.Findings {
			if f.Severity != sev {
				continue
			}
			fmt.Fprintf(&b, "%s %s\n", style(styles[sev], fmt.Sprintf("%-7s", sev)), style(styleBold, f.Rule))
			fmt.Fprintf(&b, "        %s\n", Sanitize(f.Reason))
			fmt.Fprintf(&b, "        %s %s\n\n", style(styleDim, "fix:"), Sanitize(f.Fix))
		}
	}
	fmt.Fprintf(&b, "%s, %s, %s\n", Plural(r.Count(debugger.SeverityError), "error"),
		Plural(r.Count(debugger.SeverityWarning), "warning"), Plural(r.Count(debugger.SeverityInfo), "note"))
	return b.Bytes()
}

func lintMs(v float64) string {
	return FormatGap(time.Duration(v * float64(time.Millisecond)))
}
