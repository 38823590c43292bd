package sse

import (
	"bytes"
	"errors"
	"io"
	"iter"
	"slices"
	"time"
	"unicode/utf8"
)

// DefaultMaxEventSize is the largest event a Decoder accepts unless told
// otherwise: real streams carry multi-megabyte events.
const DefaultMaxEventSize = 16 << 20

// ErrEventTooLarge is returned by a Decoder whose next event or line is
// larger than its MaxEventSize; the decoder stops there rather than grow
// without bound.
var ErrEventTooLarge = errors.New("sse: event exceeds the maximum event size")

const (
	// The read buffer starts small, so a short stream (an LLM answer, an
	// idle subscription) costs little, and doubles up to readBufferSize
	// while reads keep filling it, so a busy stream is read in large
	// chunks. Only a line longer than that grows it further.
	initialBufferSize = 4 << 10
	readBufferSize    = 64 << 10
	// retainedBufferSize is the largest data buffer kept between events.
	retainedBufferSize = 1 << 20
	// lineOverhead lets a line hold a field name and separator on top of
	// an event of MaxEventSize.
	lineOverhead = 64
)

var bom = []byte("\xEF\xBB\xBF")

// A Decoder reads events from a text/event-stream body exactly as the
// WHATWG HTML standard's "parsing an event stream" and "interpreting an event
// stream" sections say: UTF-8 whatever the charset, one leading BOM removed,
// CR, LF and CRLF line ends (a CRLF split across reads is one line end),
// comments, fields without a colon, one leading space stripped from values,
// ids with NUL ignored, retry only as ASCII digits, and no dispatch of an
// unterminated final block.
//
// A Decoder holds one buffered read window and reuses its buffers between
// events; a dispatched Event costs one allocation (its strings share it).
// It is not safe for concurrent use.
type Decoder struct {
	// MaxEventSize bounds an event's data and any single line, in bytes.
	// Zero means DefaultMaxEventSize. Set it before the first Next.
	MaxEventSize int

	// OnComment, when set, is called with each comment line's text (the
	// line without its leading colon) as it is read. The event model ignores
	// comments; debuggers and heartbeat watchers want them.
	OnComment func(text string)

	r    io.Reader
	err  error // from r (buffered lines may remain) or the line size limit
	done error // the error Next returns from now on

	buf        []byte
	start, end int // unread bytes are buf[start:end]

	// lf and cr cache the position in buf of the next LF and CR at or after
	// start; when none was found they are -1 and lfScanned/crScanned say how
	// far the search went, so no byte is searched twice.
	lf, cr               int
	lfScanned, crScanned int

	bomChecked bool
	skipLF     bool // the last line ended in a CR that was the last byte read
	readFilled bool // the last read filled the buffer: the stream is busy

	// The event being built.
	data       []byte
	eventType  []byte
	idBuffer   []byte
	blockRetry bool

	// Committed stream state.
	lastEventID string
	typeCache   string // the last dispatched non-default type, reused when it repeats
	retry       time.Duration
	hasRetry    bool
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r, lf: -1, cr: -1}
}

// SetLastEventID sets the last event ID string, as a client does when it
// reconnects: events of the new stream carry it until an id field changes it.
func (d *Decoder) SetLastEventID(id string) {
	d.lastEventID = id
	d.idBuffer = append(d.idBuffer[:0], id...)
}

// LastEventID returns the last event ID string: the value a reconnecting
// client sends as Last-Event-ID (when not empty). An id in a block that was
// not yet ended by a blank line does not count.
func (d *Decoder) LastEventID() string { return d.lastEventID }

// Retry returns the reconnection time set by the last valid retry field, and
// whether there was one.
func (d *Decoder) Retry() (time.Duration, bool) { return d.retry, d.hasRetry }

// Events returns an iterator over the events of the stream. It stops after
// the stream ends cleanly; any other error is yielded once, last.
func (d *Decoder) Events() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			ev, err := d.Next()
			if err == io.EOF {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// Next returns the next dispatched event. At the end of the stream it
// returns io.EOF (an unterminated final block is discarded); it returns
// ErrEventTooLarge when an event or line exceeds MaxEventSize, and any other
// read error as is. Once it has returned an error it returns it again.
func (d *Decoder) Next() (Event, error) {
	// The event is built in place through a pointer rather than returned by
	// value from each level: copying the 64-byte struct out of a frame that
	// just wrote it field by field stalls the CPU (a wide load cannot be
	// forwarded from narrower stores), which cost about a tenth of the
	// decoding time of small events.
	var ev Event
	for d.done == nil {
		line, ok := d.nextLine()
		if !ok {
			d.done = d.err
			break
		}
		if d.processLine(line, &ev) {
			return ev, nil
		}
	}
	return Event{}, d.done
}

func (d *Decoder) maxEventSize() int {
	if d.MaxEventSize > 0 {
		return d.MaxEventSize
	}
	return DefaultMaxEventSize
}

// nextLine returns the next complete line without its line end. The line
// aliases the read buffer and is valid until the next call.
func (d *Decoder) nextLine() ([]byte, bool) {
	for {
		if d.skipLF && d.start < d.end {
			if d.buf[d.start] == '\n' {
				d.start++
			}
			d.skipLF = false
		}
		if !d.bomChecked && !d.checkBOM() {
			if !d.fill() {
				return nil, false
			}
			continue
		}
		if eol := d.lineEnd(); eol >= 0 {
			line := d.buf[d.start:eol]
			d.start = eol + 1
			if d.buf[eol] == '\r' {
				if d.start < d.end {
					if d.buf[d.start] == '\n' {
						d.start++
					}
				} else {
					d.skipLF = true
				}
			}
			return line, true
		}
		if d.err != nil {
			return nil, false // what is left is an unterminated line: discarded
		}
		if d.end-d.start > d.maxEventSize()+lineOverhead {
			d.err = ErrEventTooLarge
			return nil, false
		}
		if !d.fill() {
			return nil, false
		}
	}
}

// checkBOM removes one leading BOM. It reports false when it needs more bytes
// to decide.
func (d *Decoder) checkBOM() bool {
	avail := d.buf[d.start:d.end]
	if len(avail) < len(bom) && bytes.HasPrefix(bom, avail) && d.err == nil {
		return false
	}
	if bytes.HasPrefix(avail, bom) {
		d.start += len(bom)
	}
	d.bomChecked = true
	return true
}

// lineEnd returns the position in buf of the first CR or LF in the unread
// bytes, or -1.
//
// Each search runs to the end of the buffered bytes, not just to the other
// character's position: in the usual LF-only stream one search finds no CR
// in the whole read window and no line after that searches for CR again (a
// search limited to the next LF would run once per line). A CR found far
// ahead is kept in d.cr until the lines before it are consumed.
func (d *Decoder) lineEnd() int {
	if d.lf < d.start {
		d.lf, d.lfScanned = d.search('\n', d.lfScanned)
	}
	if d.cr < d.start {
		d.cr, d.crScanned = d.search('\r', d.crScanned)
	}
	switch {
	case d.cr >= d.start && (d.lf < 0 || d.cr < d.lf):
		return d.cr
	default:
		return d.lf
	}
}

// search looks for c in buf[max(start, scanned):end].
func (d *Decoder) search(c byte, scanned int) (pos, newScanned int) {
	from := max(d.start, scanned)
	if from >= d.end {
		return -1, max(scanned, from)
	}
	if i := bytes.IndexByte(d.buf[from:d.end], c); i >= 0 {
		return from + i, from + i
	}
	return -1, d.end
}

// fill reads more bytes, compacting or growing the buffer as needed. It
// reports false when the reader failed or ended (d.err is then set) and no
// bytes arrived.
func (d *Decoder) fill() bool {
	if d.buf == nil {
		d.buf = make([]byte, initialBufferSize)
	}
	if d.start > 0 && (d.end == len(d.buf) || d.start >= len(d.buf)/2) {
		d.compact()
	}
	if d.end == len(d.buf) || (d.readFilled && len(d.buf) < readBufferSize) {
		limit := d.maxEventSize() + lineOverhead + 1
		size := min(2*len(d.buf), max(limit, len(d.buf)))
		if size == len(d.buf) {
			d.err = ErrEventTooLarge
			return false
		}
		grown := make([]byte, size)
		copy(grown, d.buf[:d.end])
		d.buf = grown
	}
	for range 100 {
		n, err := d.r.Read(d.buf[d.end:])
		d.readFilled = n == len(d.buf)-d.end
		d.end += n
		if err != nil {
			d.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	d.err = io.ErrNoProgress
	return false
}

func (d *Decoder) compact() {
	shift := d.start
	copy(d.buf, d.buf[d.start:d.end])
	d.end -= shift
	d.start = 0
	d.lf, d.lfScanned = shiftPos(d.lf, d.lfScanned, shift)
	d.cr, d.crScanned = shiftPos(d.cr, d.crScanned, shift)
}

func shiftPos(pos, scanned, shift int) (int, int) {
	if pos >= shift {
		pos -= shift
	} else {
		pos = -1
	}
	return pos, max(scanned-shift, 0)
}

// processLine applies one line to the event being built and reports whether
// it dispatched an event, which it then stored in ev.
func (d *Decoder) processLine(line []byte, ev *Event) bool {
	if len(line) == 0 {
		return d.dispatch(ev)
	}
	if line[0] == ':' {
		if d.OnComment != nil {
			d.OnComment(decodeUTF8(line[1:]))
		}
		return false
	}
	field, value, ok := splitField(line)
	if !ok {
		return false
	}
	switch string(field) {
	case "data":
		if len(d.data)+len(value)+1 > d.maxEventSize() {
			d.done = ErrEventTooLarge
			return false
		}
		d.appendData(value)
	case "event":
		d.eventType = append(d.eventType[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			d.idBuffer = append(d.idBuffer[:0], value...)
		}
	case "retry":
		if ms, ok := parseRetry(value); ok {
			d.retry, d.hasRetry, d.blockRetry = ms, true, true
		}
	}
	return false
}

// appendData appends value and a LF to the data buffer. It reslices d.data
// in place instead of assigning append's result: that assignment stores the
// slice's pointer, which costs a GC write barrier on every data line while a
// collection runs (often, when events are large), whereas reslicing a slice
// into itself stores only its length.
func (d *Decoder) appendData(value []byte) {
	n := len(d.data)
	if cap(d.data)-n <= len(value) {
		d.data = slices.Grow(d.data, len(value)+1)
	}
	d.data = d.data[:n+len(value)+1]
	copy(d.data[n:], value)
	d.data[n+len(value)] = '\n'
}

// maxFieldName is the length of the longest field name a block uses
// ("event", "retry").
const maxFieldName = 5

// splitField splits a line that is not a comment into field name and value,
// with one leading space stripped from the value. It reports false for a
// line whose name is longer than any known field, which is ignored: only a
// colon among the first maxFieldName+1 bytes can end a known name, so the
// rest of the line (maybe a long value) is never searched.
func splitField(line []byte) (field, value []byte, ok bool) {
	for i := range min(len(line), maxFieldName+1) {
		if line[i] == ':' {
			value = line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
			return line[:i], value, true
		}
	}
	if len(line) > maxFieldName {
		return nil, nil, false
	}
	return line, nil, true // a field without a colon has an empty value
}

// parseRetry accepts only ASCII digits; a value too large for a Duration is
// clamped rather than wrapped.
func parseRetry(value []byte) (time.Duration, bool) {
	if len(value) == 0 {
		return 0, false
	}
	const maxMillis = int64(1<<63-1) / int64(time.Millisecond)
	var ms int64
	for _, c := range value {
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms <= maxMillis {
			ms = ms*10 + int64(c-'0')
		}
	}
	return time.Duration(min(ms, maxMillis)) * time.Millisecond, true
}

// dispatch ends the block at a blank line. The event's data, id and type
// are built as one string, so an event costs one allocation; an id or type
// equal to the previous one reuses that string.
func (d *Decoder) dispatch(ev *Event) bool {
	blockRetry := d.blockRetry
	d.blockRetry = false
	idChanged := string(d.idBuffer) != d.lastEventID
	if len(d.data) == 0 {
		if idChanged {
			d.lastEventID = decodeUTF8(d.idBuffer)
		}
		d.eventType = d.eventType[:0]
		return false
	}

	dataLen := len(d.data) - 1 // one trailing LF is removed
	typ := "message"
	typeChanged := false
	if len(d.eventType) > 0 {
		typ = d.typeCache
		typeChanged = string(d.eventType) != d.typeCache
	}
	buf := d.data[:dataLen]
	if idChanged {
		buf = append(buf, d.idBuffer...)
	}
	idEnd := len(buf)
	if typeChanged {
		buf = append(buf, d.eventType...)
	}
	var s string
	if utf8.Valid(buf) {
		s = string(buf)
		if idChanged {
			d.lastEventID = s[dataLen:idEnd]
		}
		if typeChanged {
			typ = s[idEnd:]
		}
		s = s[:dataLen]
	} else {
		s = decodeUTF8(buf[:dataLen])
		if idChanged {
			d.lastEventID = decodeUTF8(buf[dataLen:idEnd])
		}
		if typeChanged {
			typ = decodeUTF8(buf[idEnd:])
		}
	}
	if typeChanged {
		d.typeCache = typ
	}
	*ev = Event{ID: d.lastEventID, Type: typ, Data: s, HasRetry: blockRetry}
	if blockRetry {
		ev.Retry = d.retry
	}
	d.data = buf[:0]
	if cap(d.data) > retainedBufferSize {
		d.data = nil // do not pin one huge event's buffer for the stream's life
	}
	d.eventType = d.eventType[:0]
	return true
}
