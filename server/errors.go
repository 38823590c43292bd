package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ssekit/sse/hub"
)

// httpError is an error with the HTTP status it answers and, for 429 and
// 503, how long the client should wait.
type httpError struct {
	status     int
	msg        string
	retryAfter time.Duration
	challenge  string // the WWW-Authenticate value of a 401 or 403; see bearerChallenge
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, msg string) error { return &httpError{status: status, msg: msg} }

func tooBusy(status int, msg string, retryAfter time.Duration) error {
	return &httpError{status: status, msg: msg, retryAfter: retryAfter}
}

// statusOf maps any error to the status and one-line reason the client
// gets. It is the one place that decides, so internals never leak: an error
// it does not know is a 500 with a generic reason (and is logged).
func statusOf(err error) (status int, reason string, retryAfter time.Duration) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.msg, he.retryAfter
	case errors.Is(err, hub.ErrUnauthorized):
		return http.StatusUnauthorized, err.Error(), 0
	case errors.Is(err, hub.ErrInvalidUpdate), errors.Is(err, hub.ErrNoSelector),
		errors.Is(err, hub.ErrSelectorTooLong), errors.Is(err, hub.ErrTooManyVariables),
		errors.Is(err, hub.ErrReservedSelector):
		return http.StatusBadRequest, err.Error(), 0
	case errors.Is(err, hub.ErrDuplicateID):
		return http.StatusConflict, err.Error(), 0
	case errors.Is(err, hub.ErrStoreUnavailable):
		return http.StatusServiceUnavailable, "hub: store unavailable, retry later", time.Second
	case errors.Is(err, hub.ErrHubClosed):
		return http.StatusServiceUnavailable, "hub: shutting down", time.Second
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "hub: request cancelled or timed out", time.Second
	default:
		return http.StatusInternalServerError, "internal error", 0
	}
}

// expectedRefusal reports whether a 5xx is the hub saying what it meant
// to say (shutting down, at a limit, a client that left) rather than
// something going wrong: it is logged at debug level, not as an error.
func expectedRefusal(err error) bool {
	var he *httpError
	return errors.As(err, &he) || errors.Is(err, hub.ErrHubClosed) || errors.Is(err, context.Canceled)
}

// fail answers the request with err's status and one-line reason.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, reason, retryAfter := statusOf(err)
	if status >= 500 && !expectedRefusal(err) {
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("remote", s.clientAddr(r)), slog.Any("err", err))
	} else if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request refused",
			slog.Int("status", status), slog.String("reason", reason), slog.String("remote", s.clientAddr(r)))
	}
	if c := challengeOf(err); c != "" {
		w.Header().Set("WWW-Authenticate", withResourceMetadata(c, s.metadataURL(r)))
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retryAfter.Round(time.Second)/time.Second))))
	}
	http.Error(w, reason, status)
}
