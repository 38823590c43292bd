package debugger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ssekit/sse"
)

// The words for how a stream ends, shared by listen, lint, the debugger's
// page and the recordings: EndReason for any end, and these two that
// callers compare against.
const (
	ReasonServerEnded = "the server ended the stream"
	ReasonNoContent   = "the server answered 204 No Content: the stream is over"
	ReasonAnswered    = "the answer is complete: not sending the request again"
)

// CleanEnd reports whether err ends a stream without a failure: nil, the
// server's end of the body (io.EOF), 204 No Content, a stop the caller
// asked for (Close, a cancelled context), or a complete LLM answer
// (ErrAnswered).
func CleanEnd(err error) bool {
	var statusErr *sse.StatusError
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, sse.ErrSourceClosed), errors.Is(err, context.Canceled), errors.Is(err, ErrAnswered):
		return true
	case errors.As(err, &statusErr):
		return statusErr.StatusCode == http.StatusNoContent
	}
	return false
}

// EndReason says in words why a connection or a stream ended: the one
// vocabulary of every command and the page.
func EndReason(err error) string {
	var (
		statusErr *sse.StatusError
		typeErr   *sse.ContentTypeError
		ue        *url.Error
	)
	switch {
	case err == nil:
		return "ended"
	case errors.Is(err, io.EOF):
		return ReasonServerEnded
	case errors.Is(err, ErrAnswered):
		return ReasonAnswered
	case errors.Is(err, sse.ErrRestart):
		return "connection dropped on request"
	case errors.Is(err, ErrTimeout):
		return "timed out"
	case errors.Is(err, sse.ErrSourceClosed), errors.Is(err, context.Canceled):
		return "stopped"
	case errors.Is(err, sse.ErrReadTimeout):
		return "no data arrived for too long"
	case errors.Is(err, sse.ErrEventTooLarge):
		return "an event is larger than the maximum event size"
	case errors.As(err, &statusErr) && statusErr.StatusCode == http.StatusNoContent:
		return ReasonNoContent
	case errors.As(err, &statusErr):
		return "the server answered " + statusErr.Status
	case errors.As(err, &typeErr):
		if typeErr.ContentType == "" {
			return "response has no Content-Type; want text/event-stream"
		}
		return fmt.Sprintf("Content-Type is %q; want text/event-stream", typeErr.ContentType)
	case errors.As(err, &ue):
		return "connection failed: " + NetReason(err)
	}
	return "connection lost: " + err.Error()
}

// NetReason is a network error without the "Get URL:" prefix of
// *url.Error, for messages that name the URL already.
func NetReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return strings.TrimSpace(err.Error())
}
