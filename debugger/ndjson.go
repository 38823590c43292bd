package debugger

import (
	"io"
	"mime"
	"net/http"
)

// ConvertedFromHeader is set on a response that NDJSONClient turned into
// an event stream, to the Content-Type the server sent.
const ConvertedFromHeader = "X-Ssekit-Converted-From"

// IsNDJSON reports whether a Content-Type is newline-delimited JSON
// (application/x-ndjson, application/jsonl and their spellings), which many
// "streaming" APIs send instead of SSE.
func IsNDJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines":
		return true
	}
	return false
}

// NDJSONClient returns a copy of c whose NDJSON responses read as event
// streams: each non-empty line becomes one message event with the line as
// its data, so that listen, debug and the LLM assembly show them as they
// show SSE. The response's Content-Type becomes text/event-stream and
// ConvertedFromHeader keeps the original. The conversion streams: it holds
// no line in memory, so the event size limit of the reader applies.
func NDJSONClient(c *http.Client) *http.Client {
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	cc := *c
	cc.Transport = ndjsonTransport{rt}
	return &cc
}

type ndjsonTransport struct{ next http.RoundTripper }

func (t ndjsonTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode/100 != 2 || !IsNDJSON(resp.Header.Get("Content-Type")) {
		return resp, err
	}
	resp.Header.Set(ConvertedFromHeader, resp.Header.Get("Content-Type"))
	resp.Header.Set("Content-Type", "text/event-stream")
	resp.Header.Del("Content-Length")
	resp.ContentLength = -1
	resp.Body = &ndjsonBody{r: resp.Body}
	return resp, nil
}

// ndjsonBody turns NDJSON lines into "data:" blocks as it reads. Lines
// end with LF or CRLF; a lone CR in a line (not valid NDJSON) starts
// another data line of the same event, so that no byte of the input can
// make a field other than data.
type ndjsonBody struct {
	r         io.ReadCloser
	in        [4096]byte
	out       []byte // converted, not yet read: out[off:]
	off       int
	inLine    bool // a "data:" was written for the current line
	pendingCR bool
	err       error
}

func (b *ndjsonBody) Read(p []byte) (int, error) {
	for b.off == len(b.out) && b.err == nil {
		b.out, b.off = b.out[:0], 0
		n, err := b.r.Read(b.in[:])
		for _, c := range b.in[:n] {
			if b.pendingCR {
				b.pendingCR = false
				if c != '\n' && b.inLine {
					b.out = append(b.out, "\ndata:"...)
				}
			}
			switch c {
			case '\n':
				if b.inLine {
					b.out = append(b.out, "\n\n"...)
					b.inLine = false
				}
			case '\r':
				b.pendingCR = true
			default:
				if !b.inLine {
					b.out = append(b.out, "data:"...)
					b.inLine = true
				}
				b.out = append(b.out, c)
			}
		}
		if err != nil {
			if b.inLine { // the last line had no newline: it is still a whole value
				b.out = append(b.out, "\n\n"...)
				b.inLine = false
			}
			b.err = err
		}
	}
	if b.off == len(b.out) {
		return 0, b.err
	}
	n := copy(p, b.out[b.off:])
	b.off += n
	return n, nil
}

func (b *ndjsonBody) Close() error { return b.r.Close() }
