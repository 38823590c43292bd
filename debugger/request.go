package debugger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ssekit/sse"
)

// Errors of a request description.
var (
	ErrBadURL    = errors.New("debugger: want an http:// or https:// URL")
	ErrBadHeader = errors.New("debugger: want a header as 'Name: value'")
	// ErrTimeout is the cause of a RequestSpec.Timeout expiry.
	ErrTimeout = errors.New("debugger: timeout")
)

// DefaultBodyType is the Content-Type of a body that is not JSON when the
// request names none. It is what curl -d sends: listen's -d is curl's, and
// the debugger's page exports its requests as curl commands, so a request
// made by either and the same request made by curl are one request. (A JSON
// body is sent as application/json, which LLM APIs require.)
const DefaultBodyType = "application/x-www-form-urlencoded"

// A RequestSpec is the one description of a request to watch: what
// "ssekit listen", "lint", "debug" (as the page sends it, in JSON),
// "replay" (the request record of a recording) and the test tools build
// their requests from. NewRequest makes the *http.Request; nothing else
// does.
type RequestSpec struct {
	// Method is GET when empty, or POST when there is a body.
	Method  string   `json:"method"`
	URL     string   `json:"url"`
	Headers []Header `json:"headers,omitempty"`
	// Body is sent on every attempt (re-sent on reconnection).
	Body string `json:"body,omitempty"`
	// HasBody sends Body even when it is empty (listen -d ''), as curl
	// does: a POST with a Content-Type and no bytes.
	HasBody bool `json:"-"`
	// BodyFile names the file Body was read from (-d @file, "-" for
	// stdin); Redacted leaves such a body out of a recording.
	BodyFile    string `json:"-"`
	LastEventID string `json:"lastEventId,omitempty"`
	// NoReconnect ends the session when the stream ends instead of
	// reconnecting as a browser does.
	NoReconnect bool `json:"noReconnect,omitempty"`
	// Raw asks for raw chunk records too.
	Raw bool `json:"raw,omitempty"`
	// Insecure skips TLS certificate verification.
	Insecure bool `json:"insecure,omitempty"`
	// LLMRules, when set, assemble the answer of a JSON stream in a format
	// of its own (see MergeRules) instead of the known LLM formats.
	LLMRules *MergeRules `json:"llmRules,omitempty"`
	// MCP opens an MCP Streamable HTTP session on URL first
	// (MCPInitialize) and sends the request in it: the body, a JSON-RPC
	// request, is POSTed with the session's headers; without a body, a GET
	// opens the server's own stream. Reconnections resume with a GET and
	// Last-Event-ID, as the specification says.
	MCP bool `json:"mcp,omitempty"`
	// Timeout, when positive, bounds the whole session (every
	// reconnection included); see WithTimeout. Not part of a recording.
	Timeout time.Duration `json:"-"`
}

// A Header is one request header line.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ParseHeader parses a command line's "Name: value" header.
func ParseHeader(s string) (Header, error) {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return Header{}, fmt.Errorf("%w, got %q", ErrBadHeader, s)
	}
	return Header{Name: name, Value: strings.TrimSpace(value)}, nil
}

// SetBody sets the body from a command line's -d argument: the value
// itself, @file to read a file, or @- to read stdin (which may be nil: no
// body bytes).
func (r *RequestSpec) SetBody(arg string, stdin io.Reader) error {
	name, fromFile := strings.CutPrefix(arg, "@")
	var b []byte
	switch {
	case !fromFile:
		b = []byte(arg)
	case name == "-":
		if stdin != nil {
			var err error
			if b, err = io.ReadAll(stdin); err != nil {
				return fmt.Errorf("reading the body from stdin: %w", err)
			}
		}
	default:
		var err error
		if b, err = os.ReadFile(name); err != nil {
			return fmt.Errorf("reading the body: %w", err)
		}
	}
	r.Body, r.HasBody = string(b), true
	if fromFile {
		r.BodyFile = name
	}
	return nil
}

// CheckURL reports whether u is an absolute http:// or https:// URL.
func CheckURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("%w, not %q", ErrBadURL, u)
	}
	return nil
}

// method is the request's method: Method, or the default for the body.
func (r *RequestSpec) method() string {
	switch {
	case r.Method != "":
		return r.Method
	case r.HasBody || r.Body != "":
		return http.MethodPost
	}
	return http.MethodGet
}

// NewRequest builds the request the spec describes, on ctx: the method
// (GET, or POST with a body), the headers (a Host header sets the request's
// host), the body with DefaultBodyType or application/json when no
// Content-Type is given, and Last-Event-ID.
func (r *RequestSpec) NewRequest(ctx context.Context) (*http.Request, error) {
	if err := CheckURL(r.URL); err != nil {
		return nil, err
	}
	if r.LLMRules != nil {
		if _, err := compileRules(r.LLMRules); err != nil {
			return nil, err
		}
	}
	hasBody := r.HasBody || r.Body != ""
	var body io.Reader
	if hasBody {
		body = strings.NewReader(r.Body) // NewRequest sets GetBody: re-sent on every reconnection
	}
	req, err := http.NewRequestWithContext(ctx, r.method(), r.URL, body)
	if err != nil {
		return nil, errors.New("debugger: " + err.Error())
	}
	for _, h := range r.Headers {
		name := strings.TrimSpace(h.Name)
		if name == "" {
			continue
		}
		if strings.EqualFold(name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(name, h.Value)
	}
	if hasBody && req.Header.Get("Content-Type") == "" {
		ct := DefaultBodyType
		if json.Valid([]byte(r.Body)) {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if r.LastEventID != "" {
		req.Header.Set("Last-Event-ID", r.LastEventID)
	}
	return req, nil
}

// WithTimeout returns ctx bounded by Timeout, with ErrTimeout as its cause
// when it expires; ctx itself when Timeout is not positive.
func (r *RequestSpec) WithTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, r.Timeout, ErrTimeout)
}

// Redacted returns a copy fit for a recording that may be shared: its
// credentials (Authorization, Cookie, API-key headers) are replaced, and a
// body read from a file is left out (the file is named).
func (r RequestSpec) Redacted() RequestSpec {
	r.Method = r.method()
	r.Headers = append([]Header(nil), r.Headers...)
	for i, h := range r.Headers {
		if isSecretHeader(h.Name) {
			r.Headers[i].Value = "REDACTED"
		}
	}
	if r.BodyFile != "" {
		r.Body = ""
	}
	return r
}

func isSecretHeader(name string) bool {
	n := strings.ToLower(name)
	return n == "authorization" || n == "cookie" || n == "proxy-authorization" ||
		strings.Contains(n, "api-key") || strings.Contains(n, "apikey") || strings.Contains(n, "token")
}

// A ConnectError is a first connection that failed: a watched stream ends
// with it at once rather than retrying, so that a wrong URL says so.
type ConnectError struct{ Err error }

func (e *ConnectError) Error() string { return e.Err.Error() }
func (e *ConnectError) Unwrap() error { return e.Err }

// A Stream is a watched stream: an sse.EventSource whose first connection
// failing ends it: Next then returns a *ConnectError (the cause of the
// request's context).
type Stream struct {
	*sse.EventSource
	stop     context.CancelCauseFunc
	answered func() bool // see EndAnswered
}

// ErrAnswered ends a stream whose LLM answer was complete when its
// connection ended (EndAnswered): a clean end.
var ErrAnswered = errors.New("debugger: the answer is complete")

// EndAnswered makes the stream end with ErrAnswered, instead of
// reconnecting, when its connection ends after a's answer is complete (the
// end marker or a stop reason arrived): reconnecting would send the
// request again, and a model would answer, and bill, again. An MCP stream
// has no such end and resumes as usual. Call it before the first Next,
// from the goroutine that calls Next and feeds a.
func (s *Stream) EndAnswered(a *Assembler) {
	s.answered = func() bool { return a.Done() || a.Finish() != "" }
}

// Connect starts c on req as Connect does, wrapping c's OnConnect and
// OnRetry hooks so that a failure before any connection was accepted ends
// the stream (OnRetry is then not called).
func Connect(c *sse.Client, req *http.Request) *Stream {
	ctx, stop := context.WithCancelCause(req.Context())
	s := &Stream{stop: stop}
	var connected atomic.Bool
	onConnect, onRetry := c.OnConnect, c.OnRetry
	c.OnConnect = func(resp *http.Response) {
		connected.Store(true)
		if onConnect != nil {
			onConnect(resp)
		}
	}
	c.OnRetry = func(err error, delay time.Duration) {
		if !connected.Load() {
			stop(&ConnectError{err})
			return
		}
		if s.answered != nil && s.answered() {
			stop(ErrAnswered)
			return
		}
		if onRetry != nil {
			onRetry(err, delay)
		}
	}
	s.EventSource = c.Connect(req.WithContext(ctx))
	return s
}

// Close ends the stream.
func (s *Stream) Close() error {
	err := s.EventSource.Close()
	s.stop(nil)
	return err
}
