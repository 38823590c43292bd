package debugger

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ssekit/sse"
)

// ErrNothingToReplay is returned by NewReplayHandler for a session without
// events or comments.
var ErrNothingToReplay = errors.New("debugger: the recording has no events or comments")

// ReplayConfig configures a replay.
type ReplayConfig struct {
	// Speed divides the recorded gaps: 2 replays twice as fast. Zero means
	// 1 (the original timing); negative means no waiting at all.
	Speed float64
	// Heartbeat is how long the replay may be idle before a ":" comment
	// line is sent; zero means sse.DefaultHeartbeat, negative disables
	// them. Recorded comments are replayed either way.
	Heartbeat time.Duration
}

// utf8BOM is the byte order mark a stream may start with.
const utf8BOM = "\xEF\xBB\xBF"

// replayItem is one recorded event or comment, encoded.
type replayItem struct {
	t     float64       // the record's time
	wait  time.Duration // after the previous item (or the connection)
	event bool
	id    string // the event's id, for Last-Event-ID
	wire  []byte // the bytes sent
	// bom: the recorded block started the stream with a byte order mark
	// (not in wire), sent again only as a response's first bytes: anywhere
	// else it would spoil the first field's name.
	bom bool
}

// NewReplayHandler serves a recorded session as an event stream, on every
// path and method: the events (with their ids, types and retry fields) and
// comments, with the recorded gaps between them. A request with a
// Last-Event-ID that names a recorded event resumes after it, at once; one
// that names the last event gets 204 No Content, so that an EventSource
// stops instead of replaying from the start.
//
// An event whose record keeps the raw bytes of its block (Raw, exact from
// Raw64 when they were not UTF-8) is sent as those bytes, so that a client
// reads what the original server sent, comments inside the block and bytes
// that are not UTF-8 included; the comment records of that block are then
// not sent again. An event without them (older recordings), or whose bytes
// do not decode to the recorded event (a block cut at 1 MiB, an id set by an
// earlier block that had no data), is encoded again from its fields.
func NewReplayHandler(recs []Record, cfg ReplayConfig) (http.Handler, error) {
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	var (
		items  []replayItem
		base   float64 // the time the first item's wait counts from
		lastID string  // of the previous event
		// since is the count of comment items since the last event or
		// connection: the comments a raw block may hold.
		since int
	)
	for _, r := range recs {
		switch r.Kind {
		case KindOpen:
			if len(items) == 0 {
				base = r.T // the first item's wait counts from the connection
			}
			since = 0
		case KindComment:
			// The recorded text keeps the space after the colon, which
			// AppendComment writes itself.
			items = append(items, replayItem{t: r.T, wire: sse.AppendComment(nil, strings.TrimPrefix(r.Text, " "))})
			since++
		case KindEvent:
			it := replayItem{t: r.T, event: true, id: r.ID}
			if raw, comments, ok := rawBlock(&r, lastID); ok {
				it.wire, it.bom = []byte(raw), strings.HasPrefix(raw, utf8BOM)
				if it.bom {
					it.wire = it.wire[len(utf8BOM):]
				}
				// The block's comments were recorded just before it.
				items = items[:len(items)-min(comments, since)]
			} else {
				wire, err := recordEvent(&r).AppendTo(nil)
				if err != nil {
					return nil, fmt.Errorf("debugger: event %d: %w", r.Seq, err)
				}
				it.wire = wire
			}
			items = append(items, it)
			lastID, since = r.ID, 0
		}
	}
	if len(items) == 0 {
		return nil, ErrNothingToReplay
	}
	prev := base
	for i := range items {
		if cfg.Speed > 0 && items[i].t > prev {
			items[i].wait = time.Duration((items[i].t - prev) / cfg.Speed * float64(time.Millisecond))
		}
		prev = items[i].t
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveReplay(w, r, items, cfg)
	}), nil
}

// recordEvent returns the event of an event record.
func recordEvent(r *Record) *sse.Event {
	ev := &sse.Event{ID: r.ID, Type: r.Type, Data: r.Data}
	if ev.Type == "message" {
		ev.Type = ""
	}
	if r.Retry != nil {
		ev.Retry, ev.HasRetry = time.Duration(*r.Retry)*time.Millisecond, true
	}
	return ev
}

// rawBlock returns the recorded bytes of an event's block and the count of
// comment lines in it, when the bytes decode, after an event whose id was
// lastID, to exactly the recorded event.
func rawBlock(r *Record, lastID string) (raw string, comments int, ok bool) {
	if r.Raw == "" {
		return "", 0, false
	}
	d := sse.NewDecoder(strings.NewReader(r.Raw))
	d.SetLastEventID(lastID)
	d.OnComment = func(string) { comments++ }
	ev, err := d.Next()
	if err != nil {
		return "", 0, false
	}
	want := recordEvent(r)
	if ev.Type == "message" {
		ev.Type = ""
	}
	if ev.ID != want.ID || ev.Type != want.Type || ev.Data != want.Data || ev.HasRetry != want.HasRetry ||
		(ev.HasRetry && ev.Retry.Milliseconds() != want.Retry.Milliseconds()) {
		return "", 0, false
	}
	if _, err := d.Next(); !errors.Is(err, io.EOF) {
		return "", 0, false // more than one event
	}
	return r.Raw, comments, true
}

func serveReplay(w http.ResponseWriter, r *http.Request, items []replayItem, cfg ReplayConfig) {
	start := 0
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		for i := len(items) - 1; i >= 0; i-- {
			if items[i].event && items[i].id == last {
				start = i + 1
				break
			}
		}
		if start >= len(items) {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	// The Stream sends the headers; the recorded bytes are written here,
	// from this goroutine only, heartbeats included.
	stream, err := sse.NewStream(w, r, sse.StreamConfig{Heartbeat: -1})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer stream.Close()
	rc := http.NewResponseController(w)
	var (
		written   bool
		lastWrite time.Time
	)
	write := func(p []byte) error {
		// ErrNotSupported only means the writer has no deadlines: go on.
		_ = rc.SetWriteDeadline(time.Now().Add(sse.DefaultWriteTimeout))
		if _, err := w.Write(p); err != nil {
			return err
		}
		written, lastWrite = true, time.Now()
		return rc.Flush()
	}
	heartbeat := cfg.Heartbeat
	if heartbeat == 0 {
		heartbeat = sse.DefaultHeartbeat
	}
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	lastWrite = time.Now()
	for i := start; i < len(items); i++ {
		it := items[i]
		// A resumed replay starts at once; the first connection waits as
		// the recorded one did.
		if it.wait > 0 && (i > start || start == 0) {
			due := time.Now().Add(it.wait)
			for now := time.Now(); now.Before(due); now = time.Now() {
				next, beat := due, false
				if heartbeat > 0 && lastWrite.Add(heartbeat).Before(due) {
					next, beat = lastWrite.Add(heartbeat), true
				}
				timer.Reset(next.Sub(now))
				select {
				case <-timer.C:
				case <-stream.Context().Done():
					return
				}
				if beat {
					if err := write([]byte(":\n")); err != nil {
						return
					}
				}
			}
		}
		wire := it.wire
		if it.bom && !written {
			wire = append([]byte(utf8BOM), wire...)
		}
		if err := write(wire); err != nil {
			return
		}
	}
}
