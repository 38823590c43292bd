package sse

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// Errors returned when an Event cannot be written without changing its meaning.
var (
	ErrInvalidID    = errors.New("sse: event id contains CR, LF or NUL")
	ErrInvalidType  = errors.New("sse: event type contains CR or LF")
	ErrInvalidRetry = errors.New("sse: negative retry")
)

// Event is one server-sent event.
//
// When decoded, ID is the last event ID at dispatch time (as the browser's
// MessageEvent.lastEventId), Type is "message" when the stream gave none, and
// Data is the data buffer with its final newline removed.
//
// When encoded, an empty ID or Type writes no field, and Data is always
// written (an empty Data as a single "data:" line), so every encoded Event is
// dispatched by the receiver.
type Event struct {
	ID   string
	Type string
	Data string

	// Retry is the reconnection time. It is written, in whole milliseconds,
	// when it is positive or HasRetry is set; a decoded event has HasRetry set
	// when its block carried a valid retry field (which may be 0).
	Retry    time.Duration
	HasRetry bool
}

// Validate reports whether e can be written without injecting a field or an
// event: ID and Type must be single lines (and ID free of NUL, which a
// receiver would ignore), and Retry not negative.
func (e *Event) Validate() error {
	if hasBreak(e.ID, true) {
		return ErrInvalidID
	}
	if hasBreak(e.Type, false) {
		return ErrInvalidType
	}
	if e.Retry < 0 {
		return ErrInvalidRetry
	}
	return nil
}

// hasBreak reports whether s contains CR or LF, or NUL when nul is set.
// It is what strings.ContainsAny(s, "\r\n\x00") says, without building a
// character set per call (which made Validate cost more than the rest of
// AppendTo): the three bytes are below 0x0E, so most bytes are cleared by
// one comparison.
func hasBreak(s string, nul bool) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= '\r' && (c == '\r' || c == '\n' || (nul && c == 0)) {
			return true
		}
	}
	return false
}

// AppendTo appends the wire form of e, ending with the blank line that
// dispatches it, to dst. It appends nothing and returns an error when e does
// not Validate.
func (e *Event) AppendTo(dst []byte) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return dst, err
	}
	if e.ID != "" {
		dst = appendField(dst, "id:", e.ID)
	}
	if e.Type != "" {
		dst = appendField(dst, "event:", e.Type)
	}
	if e.Retry > 0 || e.HasRetry {
		dst = append(dst, "retry:"...)
		dst = strconv.AppendInt(dst, e.Retry.Milliseconds(), 10)
		dst = append(dst, '\n')
	}
	dst = appendLines(dst, "data:", e.Data, true)
	return append(dst, '\n'), nil
}

// WriteTo writes the wire form of e to w in one Write call.
func (e *Event) WriteTo(w io.Writer) (int64, error) {
	buf, err := e.AppendTo(make([]byte, 0, e.encodedSizeHint()))
	if err != nil {
		return 0, err
	}
	n, err := w.Write(buf)
	return int64(n), err
}

// encodedSizeHint is an upper bound of the size of e's wire form, so that
// WriteTo allocates its buffer once, even for multi-line data: each field
// line costs its name, a colon, a guard space and a LF on top of the value;
// retry is at most 13 digits of milliseconds; and each CR or LF in Data
// starts another "data:" line. The two counts are vectorised scans, much
// cheaper than growing a large buffer.
func (e *Event) encodedSizeHint() int {
	const (
		idLine    = len("id: \n")
		typeLine  = len("event: \n")
		retryLine = len("retry:9223372036854\n")
		dataLine  = len("data: \n")
		blankLine = len("\n")
	)
	breaks := strings.Count(e.Data, "\n") + strings.Count(e.Data, "\r")
	return len(e.ID) + len(e.Type) + len(e.Data) +
		idLine + typeLine + retryLine + blankLine + dataLine*(breaks+1)
}

// AppendComment appends text as comment lines (": text"), one per line of
// text, so a newline in text cannot end the comment early. An empty text
// appends the bare ":" line used as a heartbeat.
func AppendComment(dst []byte, text string) []byte {
	if text == "" {
		return append(dst, ":\n"...)
	}
	// A reader keeps a comment's text as is (no space is stripped), so a
	// line starting with a space needs no extra one.
	return appendLines(dst, ": ", text, false)
}

// appendField appends "name value\n". The value is known to be one line; a
// value starting with a space gets the separator space the reader strips.
func appendField(dst []byte, name, value string) []byte {
	return appendLine(dst, name, value, true)
}

// appendLine appends prefix+value+"\n", with a space between them when
// guardSpace is set and value starts with a space (a field value, whose one
// leading space the reader strips).
func appendLine(dst []byte, prefix, value string, guardSpace bool) []byte {
	dst = append(dst, prefix...)
	if guardSpace && value != "" && value[0] == ' ' {
		dst = append(dst, ' ')
	}
	dst = append(dst, value...)
	return append(dst, '\n')
}

// appendLines appends one prefix+line+"\n" per line of text, splitting on
// CRLF, LF and CR alike. A trailing line break yields a final empty line, so
// the receiver gets it back. The next CR and LF positions are each searched
// once (with the vectorised IndexByte), so any mix of line ends is linear.
// guardSpace is as for appendLine.
func appendLines(dst []byte, prefix, text string, guardSpace bool) []byte {
	lf, cr := strings.IndexByte(text, '\n'), strings.IndexByte(text, '\r')
	start := 0
	for lf >= 0 || cr >= 0 {
		end, next := lf, lf+1
		if cr >= 0 && (lf < 0 || cr < lf) {
			end, next = cr, cr+1
			if lf == cr+1 {
				next = lf + 1
			}
		}
		dst = appendLine(dst, prefix, text[start:end], guardSpace)
		start = next
		if lf >= 0 && lf < next {
			lf = indexFrom(text, '\n', next)
		}
		if cr >= 0 && cr < next {
			cr = indexFrom(text, '\r', next)
		}
	}
	return appendLine(dst, prefix, text[start:], guardSpace)
}

// indexFrom is strings.IndexByte on text[from:], as an index into text.
func indexFrom(text string, c byte, from int) int {
	i := strings.IndexByte(text[from:], c)
	if i < 0 {
		return -1
	}
	return from + i
}
