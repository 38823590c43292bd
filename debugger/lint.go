package debugger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ssekit/sse"
)

// Severities of a Finding. Only errors make "ssekit lint" fail (unless told
// to fail on warnings).
const (
	SeverityError   = "error"   // clients will misbehave
	SeverityWarning = "warning" // works here, breaks behind a proxy or on a reconnection
	SeverityInfo    = "info"    // worth knowing
)

// Defaults of a zero LintConfig.
const (
	DefaultLintDuration  = 10 * time.Second
	DefaultHeartbeat     = 15 * time.Second
	DefaultMaxEventSize  = 64 << 10
	DefaultSlowHeaders   = time.Second
	DefaultMinRetry      = 500 * time.Millisecond
	burstEvents          = 4                      // events in one read that make a burst…
	burstSilence         = 500 * time.Millisecond // …after this much silence
	bufferedFirstEvent   = time.Second            // first event this long after the first byte
	maxExamplesInFinding = 3
)

// errObserved ends an observation at its duration.
var errObserved = errors.New("debugger: observation time is over")

// A Finding is one thing wrong or risky in a stream.
type Finding struct {
	Severity string `json:"severity"`
	Rule     string `json:"rule"`
	Reason   string `json:"reason"`
	Fix      string `json:"fix"`
}

// LintConfig configures Lint. The zero value works.
type LintConfig struct {
	// HTTPClient makes the request. Nil means a client with no overall
	// timeout.
	HTTPClient *http.Client
	// Duration is how long the stream is observed. Zero means
	// DefaultLintDuration.
	Duration time.Duration
	// MaxEvents ends the observation after that many events (0: no limit).
	MaxEvents int
	// Heartbeat is the longest silence allowed: proxies and load balancers
	// close connections idle for 30–60 s. Zero means DefaultHeartbeat.
	Heartbeat time.Duration
	// MaxEventSize is the data size above which an event is reported as
	// oversized. Zero means DefaultMaxEventSize.
	MaxEventSize int
}

// A LintReport is what Lint observed and found.
type LintReport struct {
	URL    string      `json:"url"`
	Status int         `json:"status,omitempty"`
	Proto  string      `json:"proto,omitempty"`
	Header http.Header `json:"header,omitempty"`
	// Times since the request was sent, in milliseconds; -1 when it did
	// not happen.
	TTFB       float64 `json:"ttfbMs"`
	FirstByte  float64 `json:"firstByteMs"`
	FirstEvent float64 `json:"firstEventMs"`
	// Observed is how long the stream was watched, in milliseconds.
	Observed       float64  `json:"observedMs"`
	LongestSilence float64  `json:"longestSilenceMs"`
	Events         int      `json:"events"`
	Comments       int      `json:"comments"`
	Bytes          int64    `json:"bytes"`
	LargestEvent   int      `json:"largestEvent"`
	LineEnds       LineEnds `json:"lineEnds"`
	// Proxy names the proxy or platform the response came through, when
	// its headers say (Cloudflare, Caddy, nginx, …).
	Proxy string `json:"proxy,omitempty"`
	// End says why the observation stopped.
	End      string    `json:"end"`
	Findings []Finding `json:"findings"`
}

// Count returns the number of findings of a severity.
func (r *LintReport) Count(severity string) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == severity {
			n++
		}
	}
	return n
}

// Has reports whether a rule produced a finding.
func (r *LintReport) Has(rule string) bool {
	for _, f := range r.Findings {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

func (r *LintReport) add(severity, rule, fix, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Severity: severity, Rule: rule, Reason: fmt.Sprintf(format, args...), Fix: fix})
}

// linter is the state of one observation.
type linter struct {
	cfg   LintConfig
	rep   *LintReport
	start time.Time

	lastByte  time.Time
	firstByte time.Time
	chunk     int           // reads that returned bytes
	chunkGap  time.Duration // silence before the current chunk
	splitter  blockSplitter

	retryBad     []string
	retrySmall   []string
	badUTF8      int
	noID         int
	oversized    int
	burstChunk   int // the chunk of the current burst candidate
	burstCount   int
	bursts       int
	firstBurst   bool // the first event came in a burst
	firstEventAt time.Time
}

// Lint sends req and watches the response for the configured duration (or
// number of events), then reports what is wrong or risky: the status and
// headers (Content-Type, caching, proxy buffering), events without ids,
// silences longer than the heartbeat window, invalid or tiny retry fields,
// mixed line endings, invalid UTF-8, events held back by buffering and
// oversized events. It returns an error only when no response arrived at
// all (a *ConnectError); a bad response is a finding.
func Lint(ctx context.Context, req *http.Request, cfg LintConfig) (*LintReport, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultLintDuration
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.MaxEventSize <= 0 {
		cfg.MaxEventSize = DefaultMaxEventSize
	}
	l := &linter{cfg: cfg, rep: &LintReport{URL: req.URL.String(), TTFB: -1, FirstByte: -1, FirstEvent: -1}}
	l.splitter.OnLine = l.line

	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Duration, errObserved)
	defer cancel()
	var gotFirst time.Time
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() { gotFirst = time.Now() },
	})
	req = req.Clone(ctx)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/event-stream")
	}
	if req.Header.Get("Cache-Control") == "" {
		req.Header.Set("Cache-Control", "no-cache")
	}
	l.start = time.Now()
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(context.Cause(ctx), errObserved) {
			l.rep.Observed = ms(time.Since(l.start))
			l.rep.End = "no response"
			l.rep.add(SeverityError, "no-response", "send the status and headers at once and flush them (sse.NewStream does), before the first event",
				"no response headers within %s: browsers show nothing and proxies may time out", cfg.Duration)
			return l.rep, nil
		}
		return nil, &ConnectError{err}
	}
	defer resp.Body.Close()
	headersAt := time.Now()
	if gotFirst.IsZero() {
		gotFirst = headersAt
	}
	l.rep.TTFB = ms(gotFirst.Sub(l.start))
	l.rep.Status, l.rep.Proto, l.rep.Header = resp.StatusCode, resp.Proto, resp.Header
	l.lastByte = headersAt

	if !l.checkResponse(resp, headersAt.Sub(l.start)) {
		l.rep.Observed = ms(time.Since(l.start))
		return l.rep, nil
	}
	l.read(ctx, resp.Body)
	l.finish()
	return l.rep, nil
}

// checkResponse checks the status and headers; it reports false when there
// is no stream to watch.
func (l *linter) checkResponse(resp *http.Response, ttfb time.Duration) bool {
	r := l.rep
	switch {
	case resp.StatusCode == http.StatusNoContent:
		r.End = "204 No Content"
		r.add(SeverityInfo, "status", "none, if the stream is meant to be over; otherwise answer 200",
			"the server answered 204 No Content: an EventSource stops for good and nothing else can be checked")
		return false
	case resp.StatusCode != http.StatusOK:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		r.End = "status " + resp.Status
		reason := "status " + resp.Status + ": an EventSource fails the connection and does not reconnect"
		if s := strings.TrimSpace(string(body)); s != "" {
			reason += " (body: " + strings.Join(strings.Fields(s), " ") + ")"
		}
		r.add(SeverityError, "status", "answer 200 OK with the stream (redirects are followed; 204 stops a client on purpose)", "%s", reason)
		return false
	}
	ct := resp.Header.Get("Content-Type")
	mediaType, params, err := mime.ParseMediaType(ct)
	switch {
	case ct == "":
		r.add(SeverityError, "content-type", "send Content-Type: text/event-stream",
			"no Content-Type: an EventSource refuses the stream")
	case err != nil || mediaType != "text/event-stream":
		r.add(SeverityError, "content-type", "send Content-Type: text/event-stream",
			"Content-Type is %q: an EventSource refuses anything but text/event-stream", ct)
	case params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8"):
		r.add(SeverityError, "content-type", "drop the charset parameter or make it utf-8; event streams are always UTF-8",
			"Content-Type declares charset=%s, but event streams are always decoded as UTF-8", params["charset"])
	}
	if resp.Header.Get("Content-Length") != "" {
		r.add(SeverityWarning, "content-length", "do not set Content-Length on a stream; let the server use chunked encoding (HTTP/1.1) or frames (HTTP/2)",
			"the response has Content-Length %s: clients and proxies may wait for the whole body, and the stream cannot go on past it", resp.Header.Get("Content-Length"))
	}
	cc := strings.ToLower(strings.Join(resp.Header.Values("Cache-Control"), ","))
	if !strings.Contains(cc, "no-cache") && !strings.Contains(cc, "no-store") {
		what := "no Cache-Control"
		if cc != "" {
			what = fmt.Sprintf("Cache-Control is %q", cc)
		}
		r.add(SeverityWarning, "cache-control", "send Cache-Control: no-cache",
			"%s: a cache or proxy may store the stream or serve a stale copy of it", what)
	}
	if !strings.EqualFold(strings.TrimSpace(resp.Header.Get("X-Accel-Buffering")), "no") {
		r.add(SeverityWarning, "proxy-buffering", "send X-Accel-Buffering: no (and disable buffering of this location in your proxy)",
			"no X-Accel-Buffering: no: behind nginx (and proxies that honour it) events are buffered and arrive in bursts, or only when the buffer fills")
	}
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		r.add(SeverityInfo, "compression", "flush the compressor after every event (sse.StreamConfig.Compress does), or do not compress streams",
			"the stream is compressed (Content-Encoding: %s): each event must be flushed through the compressor or it waits in its buffer", enc)
	}
	if ttfb > DefaultSlowHeaders {
		r.add(SeverityWarning, "slow-headers", "send the status and headers at once and flush them (sse.NewStream does), before the first event",
			"the response headers took %s: the server (or a proxy) holds them back until the first write", roundDur(ttfb))
	}
	return true
}

// read watches the body until it ends or the observation is over.
func (l *linter) read(ctx context.Context, body io.Reader) {
	dec := sse.NewDecoder(&lintReader{r: body, l: l})
	dec.OnComment = func(string) { l.rep.Comments++ }
	for {
		ev, err := dec.Next()
		if err != nil {
			switch {
			case errors.Is(context.Cause(ctx), errObserved):
				l.rep.End = "observed for " + roundDur(l.cfg.Duration)
			case errors.Is(err, io.EOF):
				l.rep.End = ReasonServerEnded
			case errors.Is(err, sse.ErrEventTooLarge):
				l.rep.End = "an event exceeded the decoder's limit"
			case ctx.Err() != nil:
				l.rep.End = "interrupted"
			default:
				l.rep.End = EndReason(err)
			}
			return
		}
		l.event(&ev)
		if l.cfg.MaxEvents > 0 && l.rep.Events >= l.cfg.MaxEvents {
			l.rep.End = fmt.Sprintf("%d events received", l.rep.Events)
			return
		}
	}
}

// lintReader times the body's reads.
type lintReader struct {
	r io.Reader
	l *linter
}

func (lr *lintReader) Read(p []byte) (int, error) {
	n, err := lr.r.Read(p)
	if n > 0 {
		lr.l.chunkIn(p[:n])
	}
	return n, err
}

func (l *linter) chunkIn(p []byte) {
	now := time.Now()
	if l.firstByte.IsZero() {
		l.firstByte = now
		l.rep.FirstByte = ms(now.Sub(l.start))
	}
	l.chunk++
	l.chunkGap = now.Sub(l.lastByte)
	l.silence(l.chunkGap)
	l.lastByte = now
	l.rep.Bytes += int64(len(p))
	l.splitter.Write(p)
}

func (l *linter) silence(d time.Duration) {
	if v := ms(d); v > l.rep.LongestSilence {
		l.rep.LongestSilence = v
	}
}

// line checks one raw line: retry values and UTF-8.
func (l *linter) line(line []byte) {
	if !utf8.Valid(line) {
		l.badUTF8++
	}
	name, value, hasColon := bytes.Cut(line, []byte(":"))
	if string(name) != "retry" {
		return
	}
	if hasColon {
		value = bytes.TrimPrefix(value, []byte(" "))
	}
	v := string(value)
	if v == "" || strings.Trim(v, "0123456789") != "" {
		if len(l.retryBad) < maxExamplesInFinding {
			l.retryBad = append(l.retryBad, strconv.Quote(string(line)))
		}
		return
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && time.Duration(n)*time.Millisecond < DefaultMinRetry {
		if len(l.retrySmall) < maxExamplesInFinding {
			l.retrySmall = append(l.retrySmall, v+" ms")
		}
	}
}

func (l *linter) event(ev *sse.Event) {
	now := time.Now()
	r := l.rep
	r.Events++
	if r.Events == 1 {
		l.firstEventAt = now
		r.FirstEvent = ms(now.Sub(l.start))
	}
	if ev.ID == "" {
		l.noID++
	}
	if len(ev.Data) > r.LargestEvent {
		r.LargestEvent = len(ev.Data)
	}
	if len(ev.Data) > l.cfg.MaxEventSize {
		l.oversized++
	}
	// Bursts: several events completed by one read after a silence.
	if l.chunk != l.burstChunk {
		l.burstChunk, l.burstCount = l.chunk, 0
	}
	l.burstCount++
	if l.burstCount == burstEvents && l.chunkGap >= burstSilence {
		l.bursts++
		if r.Events == burstEvents {
			l.firstBurst = true
		}
	}
}

// finish turns what was counted into findings.
func (l *linter) finish() {
	r := l.rep
	end := time.Now()
	r.Observed = ms(end.Sub(l.start))
	var endSilence time.Duration // the silence before the stream ended
	if r.End != ReasonServerEnded {
		l.silence(end.Sub(l.lastByte)) // the silence going on at the end
	}
	if !strings.HasPrefix(r.End, "observed for") && !strings.HasSuffix(r.End, "events received") && r.End != "interrupted" {
		endSilence = end.Sub(l.lastByte)
	}
	r.LineEnds = l.splitter.LineEnds()

	if len(l.retryBad) > 0 {
		r.add(SeverityError, "retry-invalid", "write retry as a whole number of milliseconds in ASCII digits, e.g. retry: 3000",
			"invalid retry field %s: clients ignore it and keep their default (3 s in browsers)", strings.Join(l.retryBad, ", "))
	}
	if len(l.retrySmall) > 0 {
		r.add(SeverityWarning, "retry-small", fmt.Sprintf("use a retry of at least %s, or leave it to the client", roundDur(DefaultMinRetry)),
			"retry of %s: every client comes back that fast after a failure, which can swamp a restarting server", strings.Join(l.retrySmall, ", "))
	}
	if r.LineEnds.Mixed() {
		r.add(SeverityWarning, "line-endings", "end every line the same way, with \\n",
			"mixed line endings (%d LF, %d CRLF, %d CR): valid, but a sign of hand-built output, and some parsers get it wrong", r.LineEnds.LF, r.LineEnds.CRLF, r.LineEnds.CR)
	}
	if l.badUTF8 > 0 {
		r.add(SeverityError, "utf8", "encode every event as UTF-8 (base64 binary data)",
			"%d lines are not valid UTF-8: clients replace the bad bytes with U+FFFD", l.badUTF8)
	}
	if l.noID > 0 {
		r.add(SeverityWarning, "no-ids", "give every event an id (id: …) and resume after the request's Last-Event-ID",
			"%d of %d events have no id: after a dropped connection a client cannot say where it stopped, so events are lost or repeated", l.noID, r.Events)
	}
	if l.oversized > 0 {
		r.add(SeverityWarning, "event-size", "keep events small: send a reference (an id or URL) and let the client fetch the rest",
			"%d events are larger than %d bytes (largest %d): they are held in memory whole by every client and proxy", l.oversized, l.cfg.MaxEventSize, r.LargestEvent)
	}
	switch {
	case l.firstBurst && !l.firstByte.IsZero() && l.firstEventAt.Sub(l.firstByte) >= bufferedFirstEvent:
		fallthrough
	case l.bursts >= 2:
		r.add(SeverityWarning, "buffering", "flush after every event (http.Flusher, sse.Stream.Send does) and turn off proxy buffering (X-Accel-Buffering: no)",
			"events arrive in bursts (%d times %d or more events in one read after a silence of %s or more): something buffers them instead of sending each at once",
			l.bursts, burstEvents, roundDur(burstSilence))
	}
	silence := time.Duration(r.LongestSilence * float64(time.Millisecond))
	switch {
	case silence > l.cfg.Heartbeat:
		r.add(SeverityWarning, "heartbeat", fmt.Sprintf("send a comment line (\":\\n\") whenever the stream has been idle for %s or less", roundDur(l.cfg.Heartbeat)),
			"the stream was silent for %s (more than %s): proxies and load balancers close idle connections (often after 30–60 s)", roundDur(silence), roundDur(l.cfg.Heartbeat))
	case r.Comments == 0 && r.End != ReasonServerEnded && time.Duration(r.Observed*float64(time.Millisecond)) < l.cfg.Heartbeat:
		r.add(SeverityInfo, "heartbeat", fmt.Sprintf("observe longer (--duration above %s) to check heartbeats", roundDur(l.cfg.Heartbeat)),
			"no heartbeat seen, but the observation (%s) was shorter than the heartbeat window (%s)", roundDur(time.Duration(r.Observed*float64(time.Millisecond))), roundDur(l.cfg.Heartbeat))
	}
	l.proxyFindings(endSilence)
	if r.Events == 0 && r.Bytes == 0 {
		r.add(SeverityInfo, "no-events", "observe longer, or make the server send something",
			"nothing arrived in %s: only the response was checked", roundDur(time.Duration(r.Observed*float64(time.Millisecond))))
	}
	if r.End == ReasonServerEnded {
		r.add(SeverityInfo, "stream-ended", "send 204 No Content to a reconnection when the stream is over for good",
			"the server ended the stream after %d events: an EventSource reconnects (and, without ids, starts over)", r.Events)
	}
}

// roundDur shows a duration as a person reads it.
func roundDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
