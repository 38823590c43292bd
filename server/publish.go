package server

import (
	"errors"
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
	if token == "" {
		s.fail(w, r, errorf(http.StatusUnauthorized, "publishing needs a token (Authorization: Bearer or the "+cookieName+" cookie)"))
		return
	}
	if err := s.checkCookieOrigin(r, src); err != nil {
		s.fail(w, r, err)
		return
	}
	claims, err := s.verify(token, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.publishRate != nil {
		if wait, ok := s.publishRate.allow(token); !ok {
			s.fail(w, r, tooBusy(http.StatusTooManyRequests, "publish rate limit exceeded for this token", wait))
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
	for _, topic := range u.Topics {
		if !s.matchAny(claims.Publish, topic) {
			s.fail(w, r, errorf(http.StatusForbidden, "token may not publish to topic "+strconv.Quote(topic)))
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

// readForm reads an application/x-www-form-urlencoded body of at most
// MaxBodyBytes.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/x-www-form-urlencoded")
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
		}
		return nil, errorf(http.StatusBadRequest, "cannot read body: "+oneLine(err.Error()))
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "malformed form body: "+oneLine(err.Error()))
	}
	return form, nil
}

// parseUpdate turns publish form fields into an Update, refusing what
// would change the stream's meaning; the hub validates the rest.
func parseUpdate(form url.Values) (*hub.Update, error) {
	topics := form["topic"]
	if len(topics) == 0 {
		return nil, errorf(http.StatusBadRequest, "missing topic")
	}
	for _, t := range topics {
		if t == "" {
			return nil, errorf(http.StatusBadRequest, "empty topic")
		}
	}
	u := &hub.Update{
		Topics:  topics,
		ID:      form.Get("id"),
		Type:    form.Get("type"),
		Data:    form.Get("data"),
		Private: form.Has("private"), // Mercure: the field's presence, whatever its value
	}
	if v, ok := form["retry"]; ok {
		ms, err := parseRetry(v[0])
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
