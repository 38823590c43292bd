package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ssekit/sse/hub"
)

// Batch publishing, ssekit's extension beside the Mercure form POST (see
// docs/publishing.md): POST hub.BatchPath with an NDJSON body, one update
// per line. The body is parsed as it arrives, line by line; a batch is
// published in one Hub.PublishBatch (all or none), a streamed body
// (?stream=1) in groups committed and acknowledged as they arrive.

// Defaults of Config.MaxBatchUpdates and Config.MaxBatchBytes.
const (
	DefaultMaxBatchUpdates = 1000
	DefaultMaxBatchBytes   = 4 << 20
)

// batchContentType is the media type of a batch body and of a stream's
// acknowledgements.
const batchContentType = "application/x-ndjson"

// batchIndexHeader names, on a refused batch, the index (from 0) of the
// update that refused it.
const batchIndexHeader = "Ssekit-Batch-Index"

// batchLine is one line of a batch body (parseBatchLine): its fields, as
// JSON names them.
type batchLine struct {
	Topic   batchTopics // "topic": a string or an array of strings
	ID      string      // "id"
	Type    string      // "type"
	Data    string      // "data"
	Retry   json.Number // "retry": milliseconds
	Private bool        // "private"
}

// batchTopics is a line's "topic": one string, or an array of them.
type batchTopics []string

// publishBatch handles POST hub.BatchPath.
func (s *Server) publishBatch(w http.ResponseWriter, r *http.Request) {
	claims, key, err := s.publisher(r, false) // a batch needs a token: the publish hook decides single publishes
	if err == nil {
		err = checkBatchContentType(r)
	}
	var streamed bool
	if err == nil {
		streamed, err = streamParam(r)
	}
	if err == nil {
		err = s.allowPublish(key, 0) // an empty bucket is refused before the body is read
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if streamed {
		s.publishStream(w, r, claims, key)
		return
	}
	if r.ContentLength > s.cfg.MaxBatchBytes {
		s.fail(w, r, s.bodyError(&http.MaxBytesError{Limit: s.cfg.MaxBatchBytes}, s.cfg.MaxBatchBytes))
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	lines := newLineReader(http.MaxBytesReader(w, r.Body, s.cfg.MaxBatchBytes), int(s.cfg.MaxBodyBytes))
	defer lines.release()
	var us []*hub.Update
	var checked topicMemo
	for {
		line, err := lines.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.fail(w, r, s.bodyError(err, s.cfg.MaxBatchBytes))
			return
		}
		if len(line) == 0 {
			continue // a blank line
		}
		if len(us) == s.cfg.MaxBatchUpdates {
			s.fail(w, r, errorf(http.StatusRequestEntityTooLarge, "more than "+strconv.Itoa(s.cfg.MaxBatchUpdates)+" updates in one batch"))
			return
		}
		u, err := s.lineUpdate(claims, line, &checked)
		if err != nil {
			s.failBatch(w, r, len(us), err)
			return
		}
		us = append(us, u)
	}
	if err := s.allowPublish(key, len(us)); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.hub.PublishBatch(r.Context(), us); err != nil {
		var be *hub.BatchError
		if errors.As(err, &be) {
			s.failBatch(w, r, be.Index, be.Err)
			return
		}
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// Sized for the hub's own ids ("urn:uuid:…", 45 bytes quoted, and a
	// comma): one allocation, not a dozen as the answer grows.
	w.Write(appendAck(make([]byte, 0, 16+48*len(us)), us))
}

// publishStream publishes a streamed body (?stream=1) in groups: the
// updates that have arrived when no complete line is waiting (or a group
// at the batch limits) are published together, and their ids are written
// back at once, one acknowledgement line per group. The response ends
// with a line giving the count, or the error that stopped the stream and
// the index of the first update not stored; an update is stored exactly
// when it was acknowledged (short of the hub dying between a commit and
// its acknowledgement).
func (s *Server) publishStream(w http.ResponseWriter, r *http.Request, claims *hub.Claims, key string) {
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // HTTP/1.1: read the body while answering (HTTP/2 always can)
	w.Header().Set("Content-Type", batchContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	lines := newLineReader(r.Body, int(s.cfg.MaxBodyBytes))
	defer lines.release()
	var (
		group      []*hub.Update
		groupBytes int64
		stored     int // updates acknowledged so far
		buf        []byte
	)
	// end writes the last line: the count, or err and where it stopped.
	end := func(err error) {
		if err == nil {
			buf = append(buf[:0], `{"count":`...)
			buf = strconv.AppendInt(buf, int64(stored), 10)
			buf = append(buf, "}\n"...)
		} else {
			buf = appendStreamError(buf[:0], stored, err)
		}
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		w.Write(buf)
		rc.Flush()
	}
	// ackGroup acknowledges published updates.
	ackGroup := func(us []*hub.Update) error {
		buf = appendAck(buf[:0], us)
		stored += len(us)
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := w.Write(buf); err != nil {
			return err
		}
		return rc.Flush()
	}
	// commit publishes the group and acknowledges it; the group is empty
	// after it, whatever it returns.
	commit := func() error {
		defer func() {
			clear(group)
			group, groupBytes = group[:0], 0
		}()
		if len(group) == 0 {
			return nil
		}
		if s.shuttingDown.Load() {
			return tooBusy(http.StatusServiceUnavailable, "shutting down", retryAfterShuttingDown)
		}
		if err := s.allowPublish(key, len(group)); err != nil {
			return err
		}
		if err := s.hub.PublishBatch(r.Context(), group); err != nil {
			var be *hub.BatchError
			if !errors.As(err, &be) {
				return err
			}
			// Nothing of the group is stored: store the updates before
			// the refused one, so the stream keeps its promise that what
			// precedes the index in the error line is stored.
			if be.Index > 0 {
				if err := s.hub.PublishBatch(r.Context(), group[:be.Index]); err != nil {
					return err
				}
				if err := ackGroup(group[:be.Index]); err != nil {
					return err
				}
			}
			return be.Err
		}
		return ackGroup(group)
	}
	var checked topicMemo
	for {
		if s.shuttingDown.Load() {
			end(tooBusy(http.StatusServiceUnavailable, "shutting down", retryAfterShuttingDown))
			return
		}
		_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout)) // between lines: an idle producer sends empty lines
		line, err := lines.next()
		if err == io.EOF {
			end(commit())
			return
		}
		if err != nil {
			// The group's updates were never acknowledged: a cut stream
			// stores none of them.
			end(s.bodyError(err, 0))
			return
		}
		if len(line) > 0 {
			u, err := s.lineUpdate(claims, line, &checked)
			if err != nil {
				if cerr := commit(); cerr != nil {
					err = cerr
				}
				end(err)
				return
			}
			group = append(group, u)
			groupBytes += int64(len(line))
		}
		if len(group) > 0 && (len(group) >= s.cfg.MaxBatchUpdates || groupBytes >= s.cfg.MaxBatchBytes || !lines.lineWaiting()) {
			if err := commit(); err != nil {
				end(err)
				return
			}
		}
	}
}

// lineUpdate parses one line of a batch into an Update that claims may
// publish: the same checks as a form POST's fields (authorizedUpdate).
func (s *Server) lineUpdate(claims *hub.Claims, line []byte, checked *topicMemo) (*hub.Update, error) {
	l, err := parseBatchLine(line)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "malformed line: "+oneLine(err.Error()))
	}
	if n := len(l.Topic); n > s.cfg.MaxUpdateTopics {
		return nil, errorf(http.StatusRequestEntityTooLarge, "too many topics in one update ("+strconv.Itoa(n)+"; max "+strconv.Itoa(s.cfg.MaxUpdateTopics)+")")
	}
	form := &publishForm{
		topics:   l.Topic,
		id:       l.ID,
		typ:      l.Type,
		data:     l.Data,
		retry:    string(l.Retry),
		hasRetry: l.Retry != "",
		private:  l.Private,
	}
	return s.authorizedUpdate(claims, form, checked)
}

// failBatch answers a batch refused because of its update at index: err's
// status, its reason prefixed with the index, which the
// Ssekit-Batch-Index header also gives.
func (s *Server) failBatch(w http.ResponseWriter, r *http.Request, index int, err error) {
	status, reason, retryAfter := statusOf(err)
	if status == http.StatusInternalServerError {
		s.fail(w, r, err) // logged, reason kept generic
		return
	}
	w.Header().Set(batchIndexHeader, strconv.Itoa(index))
	s.fail(w, r, &httpError{status: status, msg: "update " + strconv.Itoa(index) + ": " + reason,
		retryAfter: retryAfter, challenge: challengeOf(err)})
}

// checkBatchContentType refuses a body that is not NDJSON (415).
func checkBatchContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == batchContentType {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != batchContentType {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type must be "+batchContentType+" (one JSON update per line)")
	}
	return nil
}

// streamParam reads the stream query parameter.
func streamParam(r *http.Request) (bool, error) {
	if r.URL.RawQuery == "" {
		return false, nil
	}
	v := r.URL.Query().Get("stream")
	if v == "" {
		return false, nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return false, errorf(http.StatusBadRequest, "stream must be true or false (1 or 0)")
	}
	return on, nil
}

// appendAck appends the acknowledgement of us: {"ids":[…]} and a newline.
func appendAck(dst []byte, us []*hub.Update) []byte {
	dst = append(dst, `{"ids":[`...)
	for i, u := range us {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, u.ID)
	}
	return append(dst, "]}\n"...)
}

// appendStreamError appends a stream's error line: the index of the first
// update not stored, the status a batch would have answered, the reason.
func appendStreamError(dst []byte, index int, err error) []byte {
	status, reason, retryAfter := statusOf(err)
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, int64(index), 10)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	if retryAfter > 0 {
		dst = append(dst, `,"retry_after":`...)
		dst = strconv.AppendInt(dst, int64(max(1, retryAfter.Round(time.Second)/time.Second)), 10)
	}
	dst = append(dst, `,"error":`...)
	dst = appendJSONString(dst, reason)
	return append(dst, "}\n"...)
}

// appendJSONString appends v as a JSON string: as it is when it needs no
// escape (an id usually), else as encoding/json writes it.
func appendJSONString(dst []byte, v string) []byte {
	plain := true
	for i := 0; i < len(v) && plain; i++ {
		c := v[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, v...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(v) // a string always marshals
	return append(dst, b...)
}

// bodyError maps an error reading a publish body to its status: 413 past
// limit bytes, 408 past the body timeout, 400 for a body cut short.
func (s *Server) bodyError(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return errorf(http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(limit, 10)+" bytes")
	case errors.Is(err, errLineTooLong):
		return errorf(http.StatusRequestEntityTooLarge, "line longer than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errorf(http.StatusRequestTimeout, "body not received within "+s.cfg.BodyTimeout.String())
	}
	return errorf(http.StatusBadRequest, "cannot read body: "+oneLine(err.Error()))
}

// lineReader reads a body line by line, each at most max bytes, with no
// copy for a line that fits its buffer.
type lineReader struct {
	br  *bufio.Reader
	max int
	buf []byte // a line longer than the buffer, assembled
}

var errLineTooLong = errors.New("line too long")

// lineBufs are the line readers' buffers, shared: a batch request would
// otherwise allocate 32 KiB.
var lineBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

func newLineReader(r io.Reader, max int) *lineReader {
	br := lineBufs.Get().(*bufio.Reader)
	br.Reset(r)
	return &lineReader{br: br, max: max}
}

// release gives the buffer back; no line next returned may be used after.
func (lr *lineReader) release() {
	lr.br.Reset(nil)
	lineBufs.Put(lr.br)
	lr.br = nil
}

// next returns the next line without its line ending, valid until the
// next call, and empty for a blank line (so a caller sees keep-alives);
// io.EOF at the end of the body. A last line without a newline counts.
func (lr *lineReader) next() ([]byte, error) {
	line, err := lr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		lr.buf = append(lr.buf[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(lr.buf) > lr.max+2 {
				return nil, errLineTooLong
			}
			line, err = lr.br.ReadSlice('\n')
			lr.buf = append(lr.buf, line...)
		}
		line = lr.buf
	}
	if err != nil && (err != io.EOF || len(line) == 0) {
		return nil, err
	}
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > lr.max {
		return nil, errLineTooLong
	}
	if len(bytes.TrimSpace(line)) > 0 {
		return line, nil
	}
	if err == io.EOF {
		return nil, io.EOF
	}
	return line[:0], nil
}

// lineWaiting reports whether a complete line has been received and not
// read yet.
func (lr *lineReader) lineWaiting() bool {
	n := lr.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := lr.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// batchLimits applies the defaults of Config.MaxBatchUpdates and
// MaxBatchBytes.
func batchLimits(updates int, bytes int64) (int, int64) {
	if updates <= 0 {
		updates = DefaultMaxBatchUpdates
	}
	updates = min(updates, hub.MaxBatchUpdates)
	if bytes <= 0 {
		bytes = DefaultMaxBatchBytes
	}
	return updates, bytes
}
