package debugger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/ssekit/sse"
)

// MCP Streamable HTTP: the headers of a session.
const (
	// MCPSessionHeader names the session the server gave in its answer to
	// initialize; a client sends it on every later request.
	MCPSessionHeader = "Mcp-Session-Id"
	// MCPVersionHeader is the protocol version a client sends on every
	// request after initialize.
	MCPVersionHeader = "Mcp-Protocol-Version"
	// MCPProtocolVersion is the version MCPInitialize asks for.
	MCPProtocolVersion = "2025-06-18"
)

// ErrMCP is an MCP session that could not be opened or used.
var ErrMCP = errors.New("debugger: MCP")

// maxMCPResponse bounds the answer to initialize that MCPInitialize reads
// (a JSON body, or the event stream that carries it).
const maxMCPResponse = 1 << 20

// maxMCPSessionID bounds the session id a server may give.
const maxMCPSessionID = 1024

// An MCPSession is the client's side of an MCP Streamable HTTP session,
// opened by MCPInitialize.
type MCPSession struct {
	// ID is the server's Mcp-Session-Id; "" for a server that keeps no
	// sessions.
	ID string
	// ProtocolVersion is the version the server chose.
	ProtocolVersion string
	// Response is the JSON-RPC response to initialize, as the server sent
	// it (the server's name, version and capabilities).
	Response json.RawMessage

	url     string
	headers []Header
}

// MCPInitialize opens a session on the MCP endpoint spec.URL, with spec's
// headers (credentials): it POSTs initialize, reads the response (JSON, or
// an event stream carrying it), then POSTs notifications/initialized with
// the session's headers. Watch the session with Client, end it with Close.
func MCPInitialize(ctx context.Context, hc *http.Client, spec *RequestSpec) (*MCPSession, error) {
	s := &MCPSession{url: spec.URL}
	for _, h := range spec.Headers {
		switch strings.ToLower(strings.TrimSpace(h.Name)) {
		case "last-event-id", "content-type", "accept", strings.ToLower(MCPSessionHeader), strings.ToLower(MCPVersionHeader):
		default:
			s.headers = append(s.headers, h)
		}
	}
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + MCPProtocolVersion +
		`","capabilities":{},"clientInfo":{"name":"ssekit","version":"debugger"}}}`
	resp, err := s.post(ctx, hc, init)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: initialize: %s%s", ErrMCP, resp.Status, bodyLine(resp.Body))
	}
	s.ID = resp.Header.Get(MCPSessionHeader)
	if len(s.ID) > maxMCPSessionID { // it is sent again on every request
		return nil, fmt.Errorf("%w: initialize: the server's %s is longer than %d bytes", ErrMCP, MCPSessionHeader, maxMCPSessionID)
	}
	for _, c := range []byte(s.ID) {
		if c < 0x21 || c > 0x7e { // the specification's visible ASCII
			return nil, fmt.Errorf("%w: initialize: the server's %s is not visible ASCII", ErrMCP, MCPSessionHeader)
		}
	}
	if s.Response, err = readInitialize(resp); err != nil {
		return nil, err
	}
	var m struct {
		Result *struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
		Error *RPCError `json:"error"`
	}
	switch err := json.Unmarshal(s.Response, &m); {
	case err != nil:
		return nil, fmt.Errorf("%w: initialize: %v", ErrMCP, err)
	case m.Error != nil:
		return nil, fmt.Errorf("%w: initialize: error %d %s", ErrMCP, m.Error.Code, m.Error.Message)
	case m.Result == nil:
		return nil, fmt.Errorf("%w: initialize: a response with no result", ErrMCP)
	}
	s.ProtocolVersion = m.Result.ProtocolVersion
	resp2, err := s.post(ctx, hc, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if err != nil {
		return nil, err
	}
	defer resp2.Body.Close()
	if resp2.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%w: notifications/initialized: %s%s", ErrMCP, resp2.Status, bodyLine(resp2.Body))
	}
	return s, nil
}

// post sends one JSON-RPC message of the handshake.
func (s *MCPSession) post(ctx context.Context, hc *http.Client, msg string) (*http.Response, error) {
	spec := RequestSpec{Method: http.MethodPost, URL: s.url, Headers: s.headers, Body: msg}
	req, err := spec.NewRequest(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := s.client(hc, false).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMCP, NetReason(err))
	}
	return resp, nil
}

// bodyLine is ": " and the first line of an error body, or "".
func bodyLine(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 512))
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if line == "" {
		return ""
	}
	return ": " + line
}

// readInitialize reads the response to initialize (id 0) from a JSON body
// or an event stream, skipping the messages before it.
func readInitialize(resp *http.Response) (json.RawMessage, error) {
	body := &io.LimitedReader{R: resp.Body, N: maxMCPResponse + 1}
	tooLong := fmt.Errorf("%w: initialize: more than %d bytes without the response", ErrMCP, maxMCPResponse)
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		b, err := io.ReadAll(body)
		if err != nil {
			return nil, fmt.Errorf("%w: initialize: %v", ErrMCP, NetReason(err))
		}
		if len(b) > maxMCPResponse {
			return nil, tooLong
		}
		return compactJSON(b)
	case "text/event-stream":
		for ev, err := range sse.NewDecoder(body).Events() {
			if body.N == 0 {
				return nil, tooLong
			}
			if err != nil {
				return nil, fmt.Errorf("%w: initialize: %v", ErrMCP, err)
			}
			var m struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal([]byte(ev.Data), &m) == nil && m.Method == "" && string(m.ID) == "0" {
				return compactJSON([]byte(ev.Data))
			}
		}
		if body.N == 0 {
			return nil, tooLong
		}
		return nil, fmt.Errorf("%w: initialize: the stream ended without the response", ErrMCP)
	}
	return nil, fmt.Errorf("%w: initialize: Content-Type %q; want application/json or text/event-stream", ErrMCP, mt)
}

func compactJSON(b []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, fmt.Errorf("%w: initialize: not JSON: %v", ErrMCP, err)
	}
	return buf.Bytes(), nil
}

// Client returns a copy of hc whose requests belong to the session, as
// the specification wants of them: Mcp-Session-Id and
// Mcp-Protocol-Version on each; a POST accepts both JSON and an event
// stream; a request that resumes (it carries Last-Event-ID) is a GET
// without a body; and a JSON answer reads as an event stream of one
// event, so that the sse client shows it as it shows streamed messages.
func (s *MCPSession) Client(hc *http.Client) *http.Client { return s.client(hc, true) }

// client is Client; convert turns JSON answers into event streams.
func (s *MCPSession) client(hc *http.Client, convert bool) *http.Client {
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c := *hc
	c.Transport = mcpTransport{next: rt, s: s, convert: convert}
	return &c
}

type mcpTransport struct {
	next    http.RoundTripper
	s       *MCPSession
	convert bool
}

func (t mcpTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if t.s.ID != "" && req.Header.Get(MCPSessionHeader) == "" {
		req.Header.Set(MCPSessionHeader, t.s.ID)
	}
	if t.s.ProtocolVersion != "" && req.Header.Get(MCPVersionHeader) == "" {
		req.Header.Set(MCPVersionHeader, t.s.ProtocolVersion)
	}
	switch {
	case req.Method == http.MethodPost && req.Header.Get("Last-Event-ID") != "":
		if req.Body != nil {
			req.Body.Close()
		}
		req.Method, req.Body, req.GetBody, req.ContentLength = http.MethodGet, nil, nil, 0
		req.Header.Del("Content-Type")
		req.Header.Set("Accept", "text/event-stream")
	case req.Method == http.MethodPost:
		if a := req.Header.Get("Accept"); a == "" || a == "text/event-stream" {
			req.Header.Set("Accept", "application/json, text/event-stream")
		}
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK || !t.convert {
		return resp, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" && req.Method == http.MethodPost {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxMCPResponse+1))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		var data bytes.Buffer
		if len(b) > maxMCPResponse || json.Compact(&data, b) != nil {
			return nil, fmt.Errorf("%w: %s: a JSON answer that is not JSON or longer than %d bytes", ErrMCP, req.URL.Redacted(), maxMCPResponse)
		}
		resp.Header.Set(ConvertedFromHeader, resp.Header.Get("Content-Type"))
		resp.Header.Set("Content-Type", "text/event-stream")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Body = io.NopCloser(strings.NewReader("data: " + data.String() + "\n\n"))
	}
	return resp, nil
}

// Close ends the session on the server (DELETE with its Mcp-Session-Id);
// a server that lets clients not end sessions answers 405, which is no
// error.
func (s *MCPSession) Close(ctx context.Context, hc *http.Client) error {
	if s.ID == "" {
		return nil
	}
	spec := RequestSpec{Method: http.MethodDelete, URL: s.url, Headers: s.headers}
	req, err := spec.NewRequest(ctx)
	if err != nil {
		return err
	}
	resp, err := s.client(hc, false).Do(req)
	if err != nil {
		return fmt.Errorf("%w: ending the session: %v", ErrMCP, NetReason(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusMethodNotAllowed {
		return fmt.Errorf("%w: ending the session: %s%s", ErrMCP, resp.Status, bodyLine(resp.Body))
	}
	return nil
}
