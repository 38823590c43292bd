package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssekit/sse"
)

const (
	// fdSlack is the file descriptors a run needs besides its subscribers.
	fdSlack = 256
	// perSourceAddr is how many subscribers share one loopback source
	// address, well under the ~28 000 ephemeral ports of Linux's default
	// range.
	perSourceAddr = 16000
	// latencyShards spreads the receivers' histogram updates.
	latencyShards = 16
	// readBufferSize is each subscriber's bufio buffer: response headers
	// and chunk framing go through it.
	readBufferSize = 2048
	// heartbeatBufferSize is the buffer an idle subscriber reads
	// heartbeats into before it needs a decoder.
	heartbeatBufferSize = 256
	// pollInterval paces the drain's checks.
	pollInterval = 10 * time.Millisecond
)

// procSample is one reading of the hub's process.
type procSample struct {
	RSS     int64 // bytes
	PeakRSS int64 // bytes
	CPU     time.Duration
}

// subscriber is one connection's tally. Its reader goroutine alone writes
// it; the run reads it after every reader has returned.
type subscriber struct {
	topic     int32 // hot topic index, or -1 when idle
	connected bool  // set by the connect phase before the reader starts
	gone      bool  // the stream ended before the run did

	seen []uint64 // bit j: update j*HotTopics+topic arrived
	last []int32  // per publisher: the highest sequence number received

	unique, dup, outOfOrder, unexpected, malformed int64
}

// runner holds one run's state.
type runner struct {
	s         *settings
	runID     string
	hotTopics []string // escaped for a query or form
	hotJSON   []string // the same topics as JSON strings, for batch lines
	idleBase  string   // idle subscriber i's topic is idleBase + i

	subs        []subscriber
	connectedOn []int // connected hot subscribers per hot topic
	acked       []atomic.Bool
	latency     [latencyShards]hist
	connectLat  hist
	publishLat  hist

	connected     atomic.Int64
	connectFailed atomic.Int64
	published     atomic.Int64
	publishFailed atomic.Int64
	expected      atomic.Int64
	delivered     atomic.Int64
	closing       atomic.Bool

	errMu           sync.Mutex // guards the two below
	firstConnectErr error
	firstPublishErr error

	h2once sync.Once
	h2     []h2conn // the shared HTTP/2 connections (HTTP2 only)

	connMu sync.Mutex // guards conns and closed
	conns  []net.Conn
	closed bool

	readers sync.WaitGroup
}

// Run connects the subscribers, publishes the updates, waits for the
// deliveries and returns what it measured. The report is not nil when the
// run started, even if it ends with an error (ctx cancelled, publishes
// refused): it then describes the partial run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	s, err := cfg.prepare(ctx)
	if err != nil {
		return nil, err
	}
	if err := raiseFileLimit(s.Subscribers, 2*s.Publishers+fdSlack); err != nil {
		return nil, err
	}
	r := &runner{
		s:           s,
		runID:       newRunID(),
		subs:        make([]subscriber, s.Subscribers),
		connectedOn: make([]int, s.HotTopics),
		acked:       make([]atomic.Bool, s.Updates),
	}
	base := "https://bench.ssekit.invalid/" + r.runID
	r.idleBase = url.QueryEscape(base + "/idle/")
	r.hotTopics = make([]string, s.HotTopics)
	r.hotJSON = make([]string, s.HotTopics)
	for k := range r.hotTopics {
		r.hotTopics[k] = url.QueryEscape(base + "/hot/" + strconv.Itoa(k))
		r.hotJSON[k] = strconv.Quote(base + "/hot/" + strconv.Itoa(k)) // plain ASCII: JSON's quoting too
	}
	for i := range r.subs {
		r.subs[i].topic = -1
		if i < s.hot {
			r.subs[i].topic = int32(i % s.HotTopics)
		}
	}
	return r.run(ctx)
}

func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	s := r.s
	start := time.Now()
	rep := r.newReport()

	stopProgress := r.progress(start)
	defer stopProgress()

	var samples [3]procSample // baseline, connected, end
	sample := func(i int) {
		if s.PID == 0 || rep.serverErr != nil {
			return
		}
		samples[i], rep.serverErr = procStats(s.PID)
	}
	sample(0)

	runCtx, cancel := context.WithTimeout(ctx, s.Duration)
	defer cancel()

	// Connect.
	connectStart := time.Now()
	r.connectAll(runCtx)
	rep.ConnectSeconds = time.Since(connectStart).Seconds()
	for i := range r.subs {
		if r.subs[i].connected && r.subs[i].topic >= 0 {
			r.connectedOn[r.subs[i].topic]++
		}
	}
	var runErr error
	if s.Subscribers > 0 && r.connected.Load() == 0 {
		runErr = fmt.Errorf("%w: %v", ErrNoSubscriber, r.firstErr(&r.firstConnectErr))
	}
	if runErr == nil && s.PID != 0 && s.Settle > 0 && s.Subscribers > 0 {
		sleep(runCtx, s.Settle)
	}
	sample(1)

	// Publish.
	var publishEnd time.Time
	if runErr == nil && runCtx.Err() == nil && s.Updates > 0 {
		publishStart := time.Now()
		runErr = r.publishAll(runCtx, publishStart)
		publishEnd = time.Now()
		rep.PublishSeconds = publishEnd.Sub(publishStart).Seconds()
	}

	// Drain: until everything expected arrived, or nothing did for Drain.
	if runErr == nil && ctx.Err() == nil && s.Subscribers > 0 && s.Updates > 0 {
		r.drain(ctx)
	}
	sample(2)
	rep.TimedOut = runCtx.Err() != nil && ctx.Err() == nil
	if runErr == nil {
		runErr = ctx.Err()
	}

	r.closeAll()
	r.readers.Wait()
	stopProgress()
	rep.Seconds = time.Since(start).Seconds()
	r.fill(rep, samples)
	if runErr != nil {
		return rep, runErr
	}
	return rep, nil
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (r *runner) recordErr(dst *error, err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if *dst == nil {
		*dst = err
	}
}

func (r *runner) firstErr(src *error) error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return *src
}

// progress prints a line every ProgressInterval, and one last line, until
// the returned function is called (any number of times).
func (r *runner) progress(start time.Time) (stop func()) {
	if r.s.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(r.s.ProgressInterval)
		defer t.Stop()
		line := func() {
			fmt.Fprintf(r.s.Progress, "bench %6.1fs  connected %d/%d  published %d/%d  delivered %d/%d\n",
				time.Since(start).Seconds(),
				r.connected.Load(), r.s.Subscribers,
				r.published.Load(), r.s.Updates,
				r.delivered.Load(), r.expected.Load())
		}
		for {
			select {
			case <-done:
				line() // the final counts
				return
			case <-t.C:
				line()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}

// connectAll opens every subscriber connection, ConnectConcurrency at a
// time, and returns when each has connected or failed.
func (r *runner) connectAll(ctx context.Context) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(r.s.ConnectConcurrency, r.s.Subscribers) {
		wg.Go(func() {
			for i := range next {
				r.connectOne(ctx, i)
			}
		})
	}
feed:
	for i := range r.subs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
}

func (r *runner) connectOne(ctx context.Context, i int) {
	began := time.Now()
	conn, body, err := r.dial(ctx, i)
	if err != nil {
		r.connectFailed.Add(1)
		r.recordErr(&r.firstConnectErr, err)
		return
	}
	r.connectLat.record(time.Since(began))
	if !r.track(conn) {
		return
	}
	r.subs[i].connected = true
	r.connected.Add(1)
	r.readers.Add(1)
	go r.read(&r.subs[i], body, &r.latency[i%latencyShards])
}

// track remembers conn for closeAll; it closes conn and reports false when
// the run is already closing.
func (r *runner) track(conn net.Conn) bool {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.closed {
		conn.Close()
		return false
	}
	r.conns = append(r.conns, conn)
	return true
}

func (r *runner) closeAll() {
	r.closing.Store(true)
	r.connMu.Lock()
	defer r.connMu.Unlock()
	r.closed = true
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// dial opens subscriber i's connection and reads the response headers: a
// hub sends them once the subscription is in place, so their arrival means
// "connected".
func (r *runner) dial(ctx context.Context, i int) (net.Conn, io.Reader, error) {
	s := r.s
	if s.HTTP2 {
		return r.dialH2(ctx, i)
	}
	ctx, cancel := context.WithTimeout(ctx, s.ConnectTimeout)
	defer cancel()
	conn, err := r.dialTCP(ctx, i)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (net.Conn, io.Reader, error) {
		conn.Close()
		return nil, nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	rw := conn
	if s.hubURL.Scheme == "https" {
		tc := tls.Client(conn, s.subscriberTLS("http/1.1"))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("bench: subscribe: %w", err))
		}
		rw = tc
	}
	if _, err := io.WriteString(rw, r.request(i)); err != nil {
		return fail(fmt.Errorf("bench: subscribe: %w", err))
	}
	br := bufio.NewReaderSize(rw, readBufferSize)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(fmt.Errorf("bench: subscribe: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		line := readLine(resp.Body)
		resp.Body.Close()
		return fail(fmt.Errorf("bench: subscribe: %s: %s", resp.Status, line))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		return fail(fmt.Errorf("bench: subscribe: Content-Type %q, not text/event-stream", resp.Header.Get("Content-Type")))
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, resp.Body, nil
}

// subscriberTLS is the TLS configuration of a subscriber's connection
// offering the ALPN protocol proto: TLSConfig's, naming the hub's host
// unless it names a server itself.
func (s *settings) subscriberTLS(proto string) *tls.Config {
	cfg := &tls.Config{}
	if s.TLSConfig != nil {
		cfg = s.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = s.hubURL.Hostname()
	}
	cfg.NextProtos = []string{proto}
	return cfg
}

// dialTCP opens the TCP connection for subscriber i, from a loopback
// source address of its own group when the hub is on IPv4 loopback.
func (r *runner) dialTCP(ctx context.Context, i int) (net.Conn, error) {
	s := r.s
	d := net.Dialer{}
	if s.loopback4 && runtime.GOOS == "linux" {
		n := 2 + i/perSourceAddr
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))}
		d.Control = sourceControl()
	}
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("bench: subscribe: %w", err)
	}
	return conn, nil
}

// request returns subscriber i's HTTP/1.1 request.
func (r *runner) request(i int) string {
	u := r.s.hubURL
	topic := r.idleBase + strconv.Itoa(i)
	if t := r.subs[i].topic; t >= 0 {
		topic = r.hotTopics[t]
	}
	var b strings.Builder
	b.WriteString("GET ")
	b.WriteString(u.EscapedPath())
	param := "topic="
	if r.s.Draft08 {
		param = "match="
	}
	if u.RawQuery != "" {
		b.WriteString("?" + u.RawQuery + "&" + param)
	} else {
		b.WriteString("?" + param)
	}
	b.WriteString(topic)
	b.WriteString(" HTTP/1.1\r\nHost: ")
	b.WriteString(u.Host)
	b.WriteString("\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: ssekit-bench\r\n")
	if r.s.SubscriberToken != "" {
		b.WriteString("Authorization: Bearer " + r.s.SubscriberToken + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// readLine returns the first line of a response body, for error messages.
func readLine(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 512))
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

// read tallies the events of one subscriber until its connection ends.
func (r *runner) read(sub *subscriber, body io.Reader, h *hist) {
	defer r.readers.Done()
	// An idle subscriber waits here with only its small buffers: the
	// decoder allocates a 64 KB read window on first use, so it is made
	// only once something other than heartbeats arrives.
	first, skipped, err := skipHeartbeats(body, make([]byte, heartbeatBufferSize))
	if err != nil {
		sub.gone = !r.closing.Load()
		return
	}
	if skipped {
		// A BOM is stripped only at the very start of a stream: a comment
		// line in front keeps a fresh decoder from stripping one here.
		first = append([]byte(":\n"), first...)
	}
	dec := sse.NewDecoder(io.MultiReader(bytes.NewReader(first), body))
	dec.MaxEventSize = max(4*r.s.Payload, 64<<10)
	for {
		ev, err := dec.Next()
		if err != nil {
			sub.gone = !r.closing.Load()
			return
		}
		r.receive(sub, ev.Data, time.Now(), h)
	}
}

// skipHeartbeats reads body into buf until a read holds something other
// than whole comment lines and blank lines, and returns that read and
// whether anything was skipped before it. What it
// skips cannot change a fresh decoder's state (comments are ignored, a
// blank line with no data dispatches nothing), so a decoder fed the
// returned bytes and then the rest of body sees the same events.
func skipHeartbeats(body io.Reader, buf []byte) (first []byte, skipped bool, err error) {
	for {
		n, err := body.Read(buf)
		if n > 0 && !onlyHeartbeats(buf[:n]) {
			return buf[:n], skipped, nil
		}
		if err != nil {
			return nil, skipped, err
		}
		skipped = skipped || n > 0
	}
}

// onlyHeartbeats reports whether b is whole lines (ending in CR or LF), each
// empty or a comment.
func onlyHeartbeats(b []byte) bool {
	if c := b[len(b)-1]; c != '\n' && c != '\r' {
		return false
	}
	atLineStart := true
	for _, c := range b {
		switch {
		case c == '\n' || c == '\r':
			atLineStart = true
		case atLineStart && c != ':':
			return false
		default:
			atLineStart = false
		}
	}
	return true
}

// receive tallies one event's data for sub.
func (r *runner) receive(sub *subscriber, data string, now time.Time, h *hist) {
	s := r.s
	seq, ts, ok := parseData(data)
	if !ok {
		sub.malformed++
		return
	}
	if seq >= int64(s.Updates) || sub.topic < 0 || seq%int64(s.HotTopics) != int64(sub.topic) {
		sub.unexpected++
		return
	}
	j := seq / int64(s.HotTopics)
	if sub.seen == nil {
		sub.seen = make([]uint64, (s.perTopic+63)/64)
	}
	w, bit := j/64, uint64(1)<<(j%64)
	if sub.seen[w]&bit != 0 {
		sub.dup++
		return
	}
	sub.seen[w] |= bit
	sub.unique++
	r.delivered.Add(1)
	if sub.last == nil {
		sub.last = make([]int32, s.Publishers)
		for p := range sub.last {
			sub.last[p] = -1
		}
	}
	p := seq % int64(s.Publishers)
	if int32(seq) < sub.last[p] {
		sub.outOfOrder++
	} else {
		sub.last[p] = int32(seq)
	}
	h.record(time.Duration(now.UnixNano() - ts))
}

// appendData appends update seq's data, published at ts (UnixNano),
// padded with 'x' to size bytes.
func appendData(dst []byte, seq int, ts int64, size int) []byte {
	start := len(dst)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, ' ')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

// parseData reads the sequence number and publish time from an update's
// data.
func parseData(data string) (seq, ts int64, ok bool) {
	a, rest, ok1 := strings.Cut(data, " ")
	b, _, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseInt(a, 10, 64)
	ts, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || seq < 0 {
		return 0, 0, false
	}
	return seq, ts, true
}

// publishAll runs the publishers; update seq is due at start + seq/Rate.
// It returns ErrPublishRefused when the hub refuses a publish with a 4xx.
func (r *runner) publishAll(ctx context.Context, start time.Time) error {
	s := r.s
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: s.ConnectTimeout}).DialContext,
		TLSClientConfig:     s.TLSConfig,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: s.Publishers,
		MaxConnsPerHost:     s.Publishers,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: s.PublishTimeout}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for p := range s.Publishers {
		wg.Go(func() {
			conn := r.newPoster(client)
			defer conn.close()
			if err := r.publisher(ctx, conn, p, start); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); errors.Is(err, ErrPublishRefused) {
		return err
	}
	return nil
}

func (r *runner) publisher(ctx context.Context, conn poster, p int, start time.Time) error {
	s := r.s
	if s.Batch > 1 {
		return r.batchPublisher(ctx, conn, p, start)
	}
	var data, body []byte
	for seq := p; seq < s.Updates; seq += s.Publishers {
		if s.Rate > 0 {
			due := start.Add(time.Duration(float64(seq) / s.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				sleep(ctx, wait)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		topic := r.hotTopics[seq%s.HotTopics]
		began := time.Now()
		data = appendData(data[:0], seq, began.UnixNano(), s.Payload)
		body = append(body[:0], "topic="...)
		body = append(body, topic...)
		body = append(body, "&data="...)
		body = append(body, url.QueryEscape(string(data))...)
		status, statusText, line, err := conn.post(ctx, s.hubURL, "application/x-www-form-urlencoded", body)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.publishFailed.Add(1)
			r.recordErr(&r.firstPublishErr, fmt.Errorf("bench: publish: %w", err))
			continue
		}
		switch {
		case status == http.StatusOK:
			r.publishLat.record(time.Since(began))
			r.acked[seq].Store(true)
			r.expected.Add(int64(r.connectedOn[seq%s.HotTopics]))
			r.published.Add(1)
		case status >= 400 && status < 500 && status != http.StatusTooManyRequests:
			r.publishFailed.Add(1)
			err := fmt.Errorf("%w: %s: %s", ErrPublishRefused, statusText, line)
			r.recordErr(&r.firstPublishErr, err)
			return err
		default:
			r.publishFailed.Add(1)
			r.recordErr(&r.firstPublishErr, fmt.Errorf("bench: publish: %s: %s", statusText, line))
		}
	}
	return nil
}

// batchPublisher is publisher for Config.Batch > 1: its updates Batch at
// a time, one NDJSON request on the batch route each.
func (r *runner) batchPublisher(ctx context.Context, conn poster, p int, start time.Time) error {
	s := r.s
	target := *s.hubURL
	target.Path = strings.TrimSuffix(target.Path, "/") + "/batch"
	target.RawPath = ""
	var data, body []byte
	seqs := make([]int, 0, s.Batch)
	for first := p; first < s.Updates; {
		seqs = seqs[:0]
		for seq := first; seq < s.Updates && len(seqs) < s.Batch; seq += s.Publishers {
			seqs = append(seqs, seq)
		}
		first = seqs[len(seqs)-1] + s.Publishers
		if s.Rate > 0 {
			due := start.Add(time.Duration(float64(seqs[0]) / s.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				sleep(ctx, wait)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		began := time.Now()
		body = body[:0]
		for _, seq := range seqs {
			// The data is digits, spaces and 'x': no JSON escape needed.
			data = appendData(data[:0], seq, began.UnixNano(), s.Payload)
			body = append(body, `{"topic":`...)
			body = append(body, r.hotJSON[seq%s.HotTopics]...)
			body = append(body, `,"data":"`...)
			body = append(body, data...)
			body = append(body, "\"}\n"...)
		}
		status, statusText, line, err := conn.post(ctx, &target, "application/x-ndjson", body)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.publishFailed.Add(int64(len(seqs)))
			r.recordErr(&r.firstPublishErr, fmt.Errorf("bench: publish: %w", err))
			continue
		}
		switch {
		case status == http.StatusOK:
			r.publishLat.record(time.Since(began))
			for _, seq := range seqs {
				r.acked[seq].Store(true)
				r.expected.Add(int64(r.connectedOn[seq%s.HotTopics]))
			}
			r.published.Add(int64(len(seqs)))
		case status >= 400 && status < 500 && status != http.StatusTooManyRequests:
			r.publishFailed.Add(int64(len(seqs)))
			err := fmt.Errorf("%w: %s: %s", ErrPublishRefused, statusText, line)
			r.recordErr(&r.firstPublishErr, err)
			return err
		default:
			r.publishFailed.Add(int64(len(seqs)))
			r.recordErr(&r.firstPublishErr, fmt.Errorf("bench: publish: %s: %s", statusText, line))
		}
	}
	return nil
}

// drain waits until every expected delivery arrived, or none arrived for
// Drain, or Duration passed, or ctx is done; then a short grace catches
// duplicates that trail the last expected delivery.
func (r *runner) drain(ctx context.Context) {
	s := r.s
	ctx, cancel := context.WithTimeout(ctx, s.Duration)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	last, lastChange := r.delivered.Load(), time.Now()
	for r.delivered.Load() < r.expected.Load() {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n := r.delivered.Load(); n != last {
				last, lastChange = n, now
			} else if now.Sub(lastChange) >= s.Drain {
				return
			}
		}
	}
	sleep(ctx, min(s.Drain/10, 200*time.Millisecond))
}

// fill completes the report once every reader has returned.
func (r *runner) fill(rep *Report, samples [3]procSample) {
	s := r.s
	rep.Connected = int(r.connected.Load())
	rep.ConnectErrors = int(r.connectFailed.Load())
	rep.ConnectLatency = newLatency(summarize(&r.connectLat))
	rep.Published = int(r.published.Load())
	rep.PublishErrors = int(r.publishFailed.Load())
	if rep.PublishSeconds > 0 {
		rep.PublishRate = float64(rep.Published) / rep.PublishSeconds
	}
	rep.PublishLatency = newLatency(summarize(&r.publishLat))
	if err := r.firstErr(&r.firstConnectErr); err != nil {
		rep.FirstConnectError = err.Error()
	}
	if err := r.firstErr(&r.firstPublishErr); err != nil {
		rep.FirstPublishError = err.Error()
	}

	for i := range r.subs {
		sub := &r.subs[i]
		if !sub.connected {
			continue
		}
		if sub.gone {
			rep.Disconnected++
		}
		rep.Delivered += sub.unique
		rep.Duplicated += sub.dup
		rep.OutOfOrder += sub.outOfOrder
		rep.Unexpected += sub.unexpected
		rep.Malformed += sub.malformed
		if sub.topic < 0 {
			continue
		}
		for seq := int(sub.topic); seq < s.Updates; seq += s.HotTopics {
			if !r.acked[seq].Load() {
				continue
			}
			rep.Expected++
			j := seq / s.HotTopics
			if sub.seen == nil || sub.seen[j/64]&(1<<(j%64)) == 0 {
				rep.Lost++
			}
		}
	}
	shards := make([]*hist, latencyShards)
	for i := range shards {
		shards[i] = &r.latency[i]
	}
	rep.Latency = newLatency(summarize(shards...))

	if s.PID != 0 {
		if rep.serverErr != nil {
			rep.ServerError = rep.serverErr.Error()
			return
		}
		base, conn, end := samples[0], samples[1], samples[2]
		st := &ServerStats{
			PID:          s.PID,
			RSSBaseline:  base.RSS,
			RSSConnected: conn.RSS,
			RSSEnd:       end.RSS,
			// The kernel updates VmHWM lazily: a reading may top it.
			RSSPeak:    max(end.PeakRSS, base.RSS, conn.RSS, end.RSS),
			CPUConnect: (conn.CPU - base.CPU).Seconds(),
			CPUPublish: (end.CPU - conn.CPU).Seconds(),
		}
		if rep.Connected > 0 {
			st.RSSPerSubscriber = float64(conn.RSS-base.RSS) / float64(rep.Connected)
		}
		if rep.Delivered > 0 {
			st.CPUPerDelivery = st.CPUPublish * 1e6 / float64(rep.Delivered)
		}
		if rep.Published > 0 {
			st.CPUPerPublish = st.CPUPublish * 1e6 / float64(rep.Published)
		}
		rep.Server = st
	}
}
