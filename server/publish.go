package server

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ssekit/sse/hub"
)

// publish handles POST /.well-known/mercure: form fields topic (repeatable),
// data, id, type, retry, private. It answers 200 with the update's id once
// the store has accepted it. A keep-alive HTTP/1.1 publisher's connection
// is taken over at its first publish (pubconn.go).
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	if !s.takeOverPublisher(w, r) {
		s.publishOne(w, r)
	}
}

// publishOne answers one single publish.
func (s *Server) publishOne(w http.ResponseWriter, r *http.Request) {
	claims, key, err := s.publisher(r, s.cfg.PublishHook != nil)
	if err == nil && claims != nil {
		err = s.allowPublish(key, 1)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	form, err := s.readForm(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := parseUpdate(form, nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if claims == nil { // no token: the application decides, once it knows the topics
		if claims, err = s.hookClaims(r, s.cfg.PublishHook, &HookRequest{Publish: true, Topics: u.Topics}); err == nil {
			key = claims.Identity
			if key == "" { // one bucket per client the application let in
				key = "hook " + clientHost(s.clientAddr(r))
			}
			err = s.allowPublish(key, 1)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if err := s.authorizeTopics(claims, u); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := s.hub.Publish(r.Context(), u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header()["Content-Type"] = textPlain // no canonicalisation, no slice per answer
	io.WriteString(w, id)
}

// textPlain is the publish answer's Content-Type, shared (net/http only
// reads header values).
var textPlain = []string{"text/plain; charset=utf-8"}

// publisher checks what every publish request needs before its body is
// read: the hub is not shutting down, and the request has a valid
// publisher token (with an allowed Origin for a cookie). It returns the
// token's claims and the key its publishes are rate-limited by. With
// hookable, a request without a token is no error: it returns nil claims,
// and the publish hook decides once the update's topics are known.
func (s *Server) publisher(r *http.Request, hookable bool) (claims *hub.Claims, rateKey string, err error) {
	if s.shuttingDown.Load() {
		return nil, "", tooBusy(http.StatusServiceUnavailable, "shutting down", retryAfterShuttingDown)
	}
	token, src, err := s.requestToken(r, false)
	if err != nil {
		return nil, "", err
	}
	if token == "" {
		if hookable {
			return nil, "", nil
		}
		return nil, "", tokenRequired("publishing needs a token (Authorization: Bearer or the " + s.cfg.CookieName + " cookie)")
	}
	if err := s.checkCookieOrigin(r, src); err != nil {
		return nil, "", err
	}
	if claims, err = s.verify(token, true); err != nil {
		return nil, "", err
	}
	rateKey = claims.Identity // one bucket per token, however it is spelled
	if rateKey == "" {
		rateKey = token
	}
	return claims, rateKey, nil
}

// allowPublish takes n publishes from the rate limit of key (429 when its
// bucket is empty).
func (s *Server) allowPublish(key string, n int) error {
	if s.publishRate == nil {
		return nil
	}
	if wait, ok := s.publishRate.allowN(key, n); !ok {
		return tooBusy(http.StatusTooManyRequests, "publish rate limit exceeded for this token", wait)
	}
	return nil
}

// authorizedUpdate turns the fields of one update into an Update that
// claims may publish: parseUpdate's checks, then every topic authorised.
func (s *Server) authorizedUpdate(claims *hub.Claims, form *publishForm, checked *topicMemo) (*hub.Update, error) {
	u, err := parseUpdate(form, checked)
	if err == nil {
		err = s.authorizeTopics(claims, u)
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// authorizeTopics refuses u unless claims may publish to every topic of it.
func (s *Server) authorizeTopics(claims *hub.Claims, u *hub.Update) error {
	for _, topic := range u.Topics {
		if !s.mayPublish(claims, topic) {
			return insufficientScope("token may not publish to topic " + strconv.Quote(topic))
		}
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
		return s.bodyError(err, s.cfg.MaxBodyBytes)
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
func parseUpdate(form *publishForm, checked *topicMemo) (*hub.Update, error) {
	topics := form.topics
	if len(topics) == 0 {
		return nil, errorf(http.StatusBadRequest, "missing topic")
	}
	for _, t := range topics {
		if t == "" {
			return nil, errorf(http.StatusBadRequest, "empty topic")
		}
		if checked != nil && t == checked.last {
			continue
		}
		if err := checkPublishTopic(t); err != nil {
			return nil, err
		}
		if checked != nil {
			checked.last = t
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

// topicMemo is the last topic a batch's update had accepted by
// checkPublishTopic: a batch's updates mostly go to one topic (a feed),
// whose text and namespace are then checked once, not per update.
type topicMemo struct{ last string }

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
