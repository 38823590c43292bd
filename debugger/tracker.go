package debugger

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/ssekit/sse"
)

// A Tracker turns what an sse.Client reports (connections, bytes, comments,
// events, reconnections) into Records with their timing: the one place
// where a watched stream becomes a session, for the debugger's page and for
// "ssekit listen --record".
//
// Use: NewTracker, Install on the Client, Trace the request's context,
// Connect, set Source, then call Event for each event Next returns and End
// with the error that ended the stream. Methods other than the trace are
// called from the goroutine calling Next.
type Tracker struct {
	// Source, when set, gives reconnect records the Last-Event-ID sent.
	Source *sse.EventSource
	// Raw makes Install emit a raw record for every chunk received.
	Raw bool

	now   func() time.Time
	start time.Time

	blocks  blockSplitter
	llm     Assembler
	seq     int
	attempt int
	bytes   int64

	mu       sync.Mutex
	reqStart time.Time // guarded by mu; when the current attempt started
	ttfb     time.Duration
}

// NewTracker returns a Tracker whose session starts now. A nil now means
// time.Now.
func NewTracker(now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{now: now, start: now()}
}

// since returns the Record time of now.
func (t *Tracker) since() float64 { return ms(t.now().Sub(t.start)) }

// Trace returns ctx with an httptrace that measures each attempt's time to
// first response byte. Give the request this context before Connect.
func (t *Tracker) Trace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn: func(string) {
			t.mu.Lock()
			t.reqStart = time.Now()
			t.mu.Unlock()
		},
		GotFirstResponseByte: func() {
			t.mu.Lock()
			t.ttfb = time.Since(t.reqStart)
			t.mu.Unlock()
		},
	})
}

// Install sets c's hooks so that they emit Records, calling the hooks c
// already had after each.
func (t *Tracker) Install(c *sse.Client, emit func(Record)) {
	onConnect, onComment, onRetry, onRead := c.OnConnect, c.OnComment, c.OnRetry, c.OnRead
	c.OnConnect = func(resp *http.Response) {
		emit(t.Open(resp))
		if onConnect != nil {
			onConnect(resp)
		}
	}
	c.OnComment = func(text string) {
		emit(Record{T: t.since(), Kind: KindComment, Text: text})
		if onComment != nil {
			onComment(text)
		}
	}
	c.OnRetry = func(err error, delay time.Duration) {
		emit(t.Reconnect(err, delay))
		if onRetry != nil {
			onRetry(err, delay)
		}
	}
	c.OnRead = func(chunk []byte) {
		t.bytes += int64(len(chunk))
		t.blocks.Write(chunk)
		if t.Raw {
			r := Record{T: t.since(), Kind: KindRaw, Bytes: t.bytes}
			r.setRaw(chunk)
			emit(r)
		}
		if onRead != nil {
			onRead(chunk)
		}
	}
}

// Open makes the record of an accepted response.
func (t *Tracker) Open(resp *http.Response) Record {
	t.attempt++
	t.blocks.Reset()
	t.mu.Lock()
	ttfb := t.ttfb
	t.mu.Unlock()
	return Record{
		T: t.since(), Kind: KindOpen, Attempt: t.attempt,
		Status: resp.StatusCode, Proto: resp.Proto, Header: resp.Header.Clone(), TTFB: ms(ttfb),
	}
}

// Reconnect makes the record of a connection that ended with a
// reconnection to come.
func (t *Tracker) Reconnect(err error, delay time.Duration) Record {
	r := Record{T: t.since(), Kind: KindReconnect, Text: EndReason(err), Delay: ms(delay)}
	if t.Source != nil {
		r.LastEventID = t.Source.LastEventID()
	}
	return r
}

// Event makes the record of an event returned by Next, with the raw bytes
// of its block and, in an LLM stream, what it added to the answer.
func (t *Tracker) Event(ev *sse.Event) Record {
	t.seq++
	r := Record{
		T: t.since(), Kind: KindEvent, Seq: t.seq,
		ID: ev.ID, Type: ev.Type, Data: ev.Data, Bytes: t.bytes,
	}
	r.setRaw(t.blocks.Pop())
	if ev.HasRetry {
		n := ev.Retry.Milliseconds()
		r.Retry = &n
	}
	if d, ok := t.llm.Feed(ev); ok {
		r.LLM = &d
	}
	return r
}

// Assembler returns the LLM answer assembled from the events so far.
func (t *Tracker) Assembler() *Assembler { return &t.llm }

// End makes the last record of a session from the error Next returned.
func (t *Tracker) End(err error) Record {
	r := Record{T: t.since(), Kind: KindEnd, Text: EndReason(err), Bytes: t.bytes}
	if CleanEnd(err) {
		return r
	}
	r.Kind = KindError
	var statusErr *sse.StatusError
	if errors.As(err, &statusErr) {
		r.Status, r.Header, r.Body = statusErr.StatusCode, statusErr.Header, string(statusErr.Body)
	}
	return r
}
