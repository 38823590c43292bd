package debugger

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ssekit/sse"
)

// Kinds of Record.
const (
	KindRequest   = "request"   // the request a session made
	KindOpen      = "open"      // a connection was accepted (status, headers, ttfb)
	KindEvent     = "event"     // a dispatched event
	KindComment   = "comment"   // a comment line (heartbeat)
	KindRaw       = "raw"       // body bytes as received
	KindReconnect = "reconnect" // a connection ended; the client reconnects
	KindError     = "error"     // the session ended on a failure
	KindEnd       = "end"       // the session ended
)

// A Record is one line of a session: what "ssekit listen --record" writes,
// what the debugger's page receives and exports, and what "ssekit replay"
// serves again. Times are milliseconds since the session started.
type Record struct {
	T    float64 `json:"t"`
	Kind string  `json:"kind"`

	// Event fields (kind event).
	Seq   int    `json:"seq,omitempty"` // 1 for the first event of the session
	ID    string `json:"id,omitempty"`
	Type  string `json:"type,omitempty"`
	Data  string `json:"data,omitempty"`
	Retry *int64 `json:"retry,omitempty"` // milliseconds, when the block set one
	// Raw is the bytes of the event's block (kind event), or of a chunk
	// (kind raw), as received.
	Raw string `json:"raw,omitempty"`
	// Raw64 is Raw in standard base64, set only when Raw is not valid
	// UTF-8: JSON cannot carry such bytes (the "raw" field shows each as
	// U+FFFD), so this field keeps them exact. ReadRecords puts the exact
	// bytes back in Raw; recordings made before it have no Raw64.
	Raw64 string    `json:"raw64,omitempty"`
	LLM   *LLMDelta `json:"llm,omitempty"`

	// Text is a comment's text, or the reason of a reconnect, error or end.
	Text string `json:"text,omitempty"`

	// Connection fields (kind open, reconnect).
	Attempt     int         `json:"attempt,omitempty"` // 1 for the first connection
	Status      int         `json:"status,omitempty"`
	Proto       string      `json:"proto,omitempty"`
	Header      http.Header `json:"header,omitempty"`
	TTFB        float64     `json:"ttfb,omitempty"`  // ms from sending the request to the response
	Delay       float64     `json:"delay,omitempty"` // ms before the next attempt
	LastEventID string      `json:"lastEventId,omitempty"`
	Body        string      `json:"body,omitempty"` // start of a refused response's body

	// Bytes is the count of body bytes received so far in the session.
	Bytes int64 `json:"bytes,omitempty"`

	Request *RequestSpec `json:"request,omitempty"` // kind request
}

// setRaw sets r's Raw, and Raw64 when b is not valid UTF-8.
func (r *Record) setRaw(b []byte) {
	r.Raw = string(b)
	if !utf8.Valid(b) {
		r.Raw64 = base64.StdEncoding.EncodeToString(b)
	}
}

// exactRaw puts the bytes of a decoded Raw64 back in Raw.
func (r *Record) exactRaw() error {
	if r.Raw64 == "" {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(r.Raw64)
	if err != nil {
		return fmt.Errorf("raw64: %w", err)
	}
	r.Raw = string(raw)
	return nil
}

// ms converts a duration to the milliseconds of a Record.
func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// RecordWriter writes Records as JSON Lines.
type RecordWriter struct {
	enc *json.Encoder
}

// NewRecordWriter returns a RecordWriter on w.
func NewRecordWriter(w io.Writer) *RecordWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &RecordWriter{enc: enc}
}

// Write writes one record as one line.
func (w *RecordWriter) Write(r *Record) error { return w.enc.Encode(r) }

// ReadRecords reads a JSON Lines session (from --record or the page's
// export). Blank lines are skipped; a line that is not a record is an error
// naming its line number.
func ReadRecords(r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var recs []Record
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rec Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, fmt.Errorf("debugger: line %d: %w", n, err)
		}
		if rec.Kind == "" {
			return nil, fmt.Errorf("debugger: line %d: no \"kind\"; not a session record", n)
		}
		if err := rec.exactRaw(); err != nil {
			return nil, fmt.Errorf("debugger: line %d: %w", n, err)
		}
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("debugger: %w", err)
	}
	return recs, nil
}

// A Recorder writes a session as JSON Lines as it happens ("ssekit listen
// --record"): the request first, then what its Tracker makes of the
// client's hooks and of each event. Write errors are kept, the first one
// reported by Err, so that a full disk does not stop the stream.
type Recorder struct {
	Tracker *Tracker
	w       *RecordWriter
	err     error
}

// NewRecorder writes the request record of spec (redacted) to w and
// returns the Recorder of its session, whose clock is now (nil: time.Now).
func NewRecorder(w io.Writer, spec *RequestSpec, now func() time.Time) *Recorder {
	r := &Recorder{Tracker: NewTracker(now), w: NewRecordWriter(w)}
	red := spec.Redacted()
	r.Write(Record{Kind: KindRequest, Request: &red})
	return r
}

// Install sets c's hooks so that they write records, after the hooks c
// already has.
func (r *Recorder) Install(c *sse.Client) { r.Tracker.Install(c, r.Write) }

// Write writes one record, unless an earlier write failed.
func (r *Recorder) Write(rec Record) {
	if r.err == nil {
		r.err = r.w.Write(&rec)
	}
}

// Err returns the first write error. A nil Recorder has none.
func (r *Recorder) Err() error {
	if r == nil {
		return nil
	}
	return r.err
}
