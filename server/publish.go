package server

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ssekit/sse/hub"
)

// publish handles POST /.well-known/mercure: form fields topic (repeatable),
// data, id, type, retry, private. It answers 200 with the update's id once
// the store has accepted it.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown.Load() {
		s.fail(w, r, tooBusy(http.StatusServiceUnavailable, "shutting down", retryAfterShuttingDown))
		return
	}
	token, src, err := requestToken(r, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hooked := token == "" && s.cfg.PublishHook != nil // decided once the topics are known
	if token == "" && !hooked {
		s.fail(w, r, tokenRequired("publishing needs a token (Authorization: Bearer or the "+hub.AuthCookie+" cookie)"))
		return
	}
	var claims *hub.Claims
	if !hooked {
		if claims, err = s.publisherClaims(r, token, src); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	form, err := s.readForm(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := parseUpdate(form)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if hooked {
		if claims, err = s.hookClaims(r, s.cfg.PublishHook, &HookRequest{Publish: true, Topics: u.Topics}); err == nil {
			err = s.checkPublishRate(claims, "")
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	for _, topic := range u.Topics {
		if !s.mayPublish(claims, topic) {
			s.fail(w, r, insufficientScope("token may not publish to topic "+strconv.Quote(topic)))
			return
		}
	}
	id, err := s.hub.Publish(r.Context(), u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, id)
}

// publisherClaims verifies a publisher's token and its publish rate.
func (s *Server) publisherClaims(r *http.Request, token string, src tokenSource) (*hub.Claims, error) {
	if err := s.checkCookieOrigin(r, src); err != nil {
		return nil, err
	}
	claims, err := s.verify(token, true)
	if err != nil {
		return nil, err
	}
	return claims, s.checkPublishRate(claims, token)
}

// checkPublishRate counts a publish against its token's rate.
func (s *Server) checkPublishRate(claims *hub.Claims, token string) error {
	if s.publishRate == nil {
		return nil
	}
	key := claims.Identity // one bucket per token, however it is spelled
	if key == "" {
		key = token
	}
	if wait, ok := s.publishRate.allow(key); !ok {
		return tooBusy(http.StatusTooManyRequests, "publish rate limit exceeded for this token", wait)
	}
	return nil
}

// readForm reads an application/x-www-form-urlencoded body of at most
// MaxBodyBytes and picks the publish fields out of it.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (*publishForm, error) {
	buf := s.bodies.Get().(*bytes.Buffer)
	defer s.putBody(buf)
	if err := s.readBody(w, r, buf); err != nil {
		return nil, err
	}
	// Counted before parsing, so parsing costs at most that many fields.
	maxFields := s.cfg.MaxUpdateTopics + maxOtherFormFields
	if bytes.Count(buf.Bytes(), []byte{'&'}) >= maxFields {
		return nil, errorf(http.StatusRequestEntityTooLarge, "too many form fields (max "+strconv.Itoa(maxFields)+": "+strconv.Itoa(s.cfg.MaxUpdateTopics)+" topics and the other fields)")
	}
	// One copy of the body as a string; the fields are substrings of it
	// (or unescaped copies), never of the pooled buffer.
	form, err := parsePublishForm(buf.String())
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "malformed form body: "+oneLine(err.Error()))
	}
	if n := len(form.topics); n > s.cfg.MaxUpdateTopics {
		return nil, errorf(http.StatusRequestEntityTooLarge, "too many topics in one update ("+strconv.Itoa(n)+"; max "+strconv.Itoa(s.cfg.MaxUpdateTopics)+")")
	}
	return form, nil
}

// readFormBody reads an application/x-www-form-urlencoded body of at most
// MaxBodyBytes (a QUERY subscription's) and returns it.
func (s *Server) readFormBody(w http.ResponseWriter, r *http.Request) (string, error) {
	buf := s.bodies.Get().(*bytes.Buffer)
	defer s.putBody(buf)
	if err := s.readBody(w, r, buf); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// putBody returns a body buffer to the pool, unless it grew too large.
func (s *Server) putBody(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBody {
		buf.Reset()
		s.bodies.Put(buf)
	}
}

// readBody reads into buf a form body of at most MaxBodyBytes, within
// BodyTimeout: 415 for another Content-Type, 413 for a larger body.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) error {
	ct := r.Header.Get("Content-Type")
	if ct != formContentType { // the usual exact value needs no parsing
		mt, _, err := mime.ParseMediaType(ct)
		if ct == "" || err != nil || mt != formContentType {
			return errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/x-www-form-urlencoded")
		}
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return errorf(http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1) // +1: ReadFrom sees EOF without growing
	}
	// Not supported (an error) only by ResponseWriters that are not a
	// connection's, such as a recorder.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errorf(http.StatusRequestTimeout, "body not received within "+s.cfg.BodyTimeout.String())
		}
		return errorf(http.StatusBadRequest, "cannot read body: "+oneLine(err.Error()))
	}
	return nil
}

// maxOtherFormFields is how many fields besides the topics a publish body
// may have: id, data, type, retry, private, and room for a client's own.
const maxOtherFormFields = 32

const formContentType = "application/x-www-form-urlencoded"

// maxPooledBody is the largest body buffer kept for reuse; a larger one
// (a rare big publish) is left to the GC.
const maxPooledBody = 64 << 10

// maxFastFormFields bounds the fields parsePublishForm parses itself; a
// body with more goes through url.ParseQuery, which enforces Go's limit on
// the number of parameters (GODEBUG urlmaxqueryparams, far above this).
const maxFastFormFields = 64

// publishForm is what a publish body says: the fields parseUpdate reads.
// Like url.Values.Get, a repeated single-valued field keeps its first value.
type publishForm struct {
	topics                     []string
	id, typ, data, retry       string
	hasRetry, private          bool
	seenID, seenType, seenData bool
}

// parsePublishForm parses a form body as url.ParseQuery does (same
// splitting, unescaping and errors) but keeps only the publish fields, with
// no map. Anything unusual (a semicolon, a bad escape, many fields) is
// handed to url.ParseQuery, so the error is exactly its own.
func parsePublishForm(body string) (*publishForm, error) {
	if strings.Count(body, "&") >= maxFastFormFields || strings.IndexByte(body, ';') >= 0 {
		return publishFormFromValues(url.ParseQuery(body))
	}
	f := &publishForm{}
	for rest := body; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(key) // no copy unless escaped
		if err != nil {
			return publishFormFromValues(url.ParseQuery(body))
		}
		if value, err = url.QueryUnescape(value); err != nil {
			return publishFormFromValues(url.ParseQuery(body))
		}
		f.add(key, value)
	}
	return f, nil
}

// publishFormFromValues is parsePublishForm's slow path.
func publishFormFromValues(form url.Values, err error) (*publishForm, error) {
	if err != nil {
		return nil, err
	}
	f := &publishForm{}
	for key, values := range form {
		for _, v := range values {
			f.add(key, v)
		}
	}
	return f, nil
}

// add records one field; it is called in the body's order for each key.
func (f *publishForm) add(key, value string) {
	switch key {
	case "topic":
		f.topics = append(f.topics, value)
	case "id":
		if !f.seenID {
			f.id, f.seenID = value, true
		}
	case "type":
		if !f.seenType {
			f.typ, f.seenType = value, true
		}
	case "data":
		if !f.seenData {
			f.data, f.seenData = value, true
		}
	case "retry":
		if !f.hasRetry {
			f.retry, f.hasRetry = value, true
		}
	case "private":
		f.private = true // Mercure: the field's presence, whatever its value
	}
}

// parseUpdate turns publish form fields into an Update, refusing what
// would change the stream's meaning; the hub validates the rest.
func parseUpdate(form *publishForm) (*hub.Update, error) {
	topics := form.topics
	if len(topics) == 0 {
		return nil, errorf(http.StatusBadRequest, "missing topic")
	}
	for _, t := range topics {
		if t == "" {
			return nil, errorf(http.StatusBadRequest, "empty topic")
		}
		if err := checkPublishTopic(t); err != nil {
			return nil, err
		}
	}
	if form.typ == reservedEventType {
		return nil, errorf(http.StatusBadRequest, `type "`+reservedEventType+`" is reserved for the hub's own events`)
	}
	u := &hub.Update{
		Topics:  topics,
		ID:      form.id,
		Type:    form.typ,
		Data:    form.data,
		Private: form.private,
	}
	if form.hasRetry {
		ms, err := parseRetry(form.retry)
		if err != nil {
			return nil, err
		}
		u.Retry = ms
	}
	return u, nil
}

func parseRetry(v string) (time.Duration, error) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, errorf(http.StatusBadRequest, "retry must be ASCII digits (milliseconds)")
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms > int64(24*time.Hour/time.Millisecond) {
		return 0, errorf(http.StatusBadRequest, "retry too large (max one day)")
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// matchAny reports whether any of selectors matches topic.
func (s *Server) matchAny(selectors []string, topic string) bool {
	for _, sel := range selectors {
		if s.hub.Match(sel, topic) {
			return true
		}
	}
	return false
}
