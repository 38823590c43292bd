package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ssekit/sse/internal/readbudget"
)

// A poster sends one publisher's requests, one at a time. It returns the
// response's status and the first line of its body (for error messages),
// having read the rest of the body so the connection can be reused.
type poster interface {
	post(ctx context.Context, target *url.URL, contentType string, body []byte) (status int, statusText, line string, err error)
	close()
}

// newPoster returns the poster for publisher p: for a plain-HTTP hub a
// connection of its own written by hand (rawPoster), otherwise client
// (TLS, where net/http also negotiates HTTP/2).
func (r *runner) newPoster(client *http.Client) poster {
	if r.s.hubURL.Scheme != "http" {
		return clientPoster{client, r.s.PublisherToken}
	}
	return &rawPoster{
		addr:    r.s.hubURL.Host,
		host:    r.s.hubURL.Host,
		token:   r.s.PublisherToken,
		connect: r.s.ConnectTimeout,
		timeout: r.s.PublishTimeout,
	}
}

// clientPoster posts through a net/http client.
type clientPoster struct {
	client *http.Client
	token  string
}

func (c clientPoster) post(ctx context.Context, target *url.URL, contentType string, body []byte) (int, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Type", contentType)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	line := readLine(resp.Body)
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody)) // for the connection's reuse
	return resp.StatusCode, resp.Status, line, nil
}

func (clientPoster) close() {}

// maxResponseBody is the most of a publish response read for the
// connection's reuse (a batch's ids); a longer one closes it.
const maxResponseBody = 1 << 20

// rawPoster keeps one HTTP/1.1 connection to a plain-HTTP hub, writes
// each request by hand and reads the response with http.ReadResponse.
// net/http's Transport spends more CPU per request than a lean hub spends
// answering it (two goroutines per connection and the hand-offs between
// them), and a generator beside the hub takes that CPU from the hub it
// measures.
type rawPoster struct {
	addr, host, token string
	connect, timeout  time.Duration

	conn net.Conn
	in   readbudget.Reader // conn, read through a budget per response
	br   *bufio.Reader
	stop func() bool // ends conn's context.AfterFunc
	head []byte
}

// maxResponseHead is what a publish response's status line and headers
// may take (net/http's client bounds them too, by MaxResponseHeaderBytes).
// With maxResponseBody it is the budget of one response: a hub that sends
// headers or a body without end costs the generator that much at most.
const maxResponseHead = 1 << 20

var errResponseTooLarge = errors.New("response too large")

func (p *rawPoster) post(ctx context.Context, target *url.URL, contentType string, body []byte) (int, string, string, error) {
	if p.conn == nil {
		if err := p.dial(ctx); err != nil {
			return 0, "", "", err
		}
	}
	status, text, line, err := p.exchange(target, contentType, body)
	if err != nil {
		p.close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
	}
	return status, text, line, err
}

func (p *rawPoster) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: p.connect}
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	p.conn, p.in = conn, readbudget.Reader{R: conn, Err: errResponseTooLarge}
	p.br = bufio.NewReaderSize(&p.in, readBufferSize)
	// A run's end cancels ctx: it ends a request in flight at once.
	p.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	return nil
}

// exchange sends one request and reads its response; an error, or a
// response after which the connection cannot be reused, closes it.
func (p *rawPoster) exchange(target *url.URL, contentType string, body []byte) (int, string, string, error) {
	h := append(p.head[:0], "POST "...)
	h = append(h, target.RequestURI()...)
	h = append(h, " HTTP/1.1\r\nHost: "...)
	h = append(h, p.host...)
	h = append(h, "\r\nUser-Agent: ssekit-bench\r\nContent-Type: "...)
	h = append(h, contentType...)
	if p.token != "" {
		h = append(h, "\r\nAuthorization: Bearer "...)
		h = append(h, p.token...)
	}
	h = append(h, "\r\nContent-Length: "...)
	h = strconv.AppendInt(h, int64(len(body)), 10)
	h = append(h, "\r\n\r\n"...)
	h = append(h, body...) // one write: the hub reads head and body together
	p.head = h
	_ = p.conn.SetDeadline(time.Now().Add(p.timeout))
	p.in.Left = maxResponseHead + 512 + maxResponseBody // the head, readLine's bytes, the rest of the body
	if _, err := p.conn.Write(h); err != nil {
		return 0, "", "", err
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		return 0, "", "", err
	}
	line := readLine(resp.Body)
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	if err != nil {
		return 0, "", "", err
	}
	// Closed by the hub, a body too long to skip, or bytes nobody asked
	// for: the next request needs a new connection.
	if resp.Close || n == maxResponseBody || p.br.Buffered() > 0 || p.in.Left <= 0 {
		p.close()
	}
	return resp.StatusCode, resp.Status, line, nil
}

func (p *rawPoster) close() {
	if p.conn != nil {
		p.stop()
		p.conn.Close()
		p.conn, p.br, p.in = nil, nil, readbudget.Reader{}
	}
}
