//lint:file-ignore SA1019 net/http's ClientConn (Go 1.26) has no Ping, which a new connection needs before its streams (see dialH2); x/net/http2's still works and is kept until it does.

package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// h2conn is one HTTP/2 connection that StreamsPerConn subscribers share.
type h2conn struct {
	once sync.Once
	conn net.Conn
	cc   *http2.ClientConn
	err  error
}

// h2conns returns the connections for the run's subscribers, made lazily.
func (r *runner) h2conns() []h2conn {
	r.h2once.Do(func() {
		per := r.s.StreamsPerConn
		r.h2 = make([]h2conn, (len(r.subs)+per-1)/per)
	})
	return r.h2
}

// dialH2 opens subscriber i's stream on its group's HTTP/2 connection
// (h2c with prior knowledge for http hubs, ALPN h2 for https), dialing
// the connection with the group's first stream.
func (r *runner) dialH2(ctx context.Context, i int) (net.Conn, io.Reader, error) {
	s := r.s
	g := &r.h2conns()[i/s.StreamsPerConn]
	g.once.Do(func() {
		dctx, cancel := context.WithTimeout(ctx, s.ConnectTimeout)
		defer cancel()
		conn, err := r.dialTCP(dctx, i)
		if err != nil {
			g.err = err
			return
		}
		if s.hubURL.Scheme == "https" {
			tc := tls.Client(conn, s.subscriberTLS("h2"))
			if err := tc.HandshakeContext(dctx); err != nil {
				conn.Close()
				g.err = fmt.Errorf("bench: subscribe: %w", err)
				return
			}
			if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
				conn.Close()
				g.err = fmt.Errorf("bench: subscribe: the hub did not offer HTTP/2 (ALPN %q)", p)
				return
			}
			conn = tc
		}
		tr := &http2.Transport{AllowHTTP: true, StrictMaxConcurrentStreams: true}
		cc, err := tr.NewClientConn(conn)
		if err == nil {
			// The hub's SETTINGS come before its answer to a PING: until
			// they are read the client allows only 100 streams, and
			// streams opened beyond that stalled in runs of 10,000.
			err = cc.Ping(dctx)
		}
		if err != nil {
			conn.Close()
			g.err = fmt.Errorf("bench: subscribe: %w", err)
			return
		}
		g.conn, g.cc = conn, cc
	})
	if g.err != nil {
		return nil, nil, g.err
	}
	u := s.hubURL
	param := "topic="
	if s.Draft08 {
		param = "match="
	}
	topic := r.idleBase + fmt.Sprint(i)
	if t := r.subs[i].topic; t >= 0 {
		topic = r.hotTopics[t]
	}
	q := "?" + param + topic
	if u.RawQuery != "" {
		q = "?" + u.RawQuery + "&" + param + topic
	}
	// The stream outlives the connect phase: its context ends only with
	// the connection (closeAll) or, before the headers, the timeout.
	sctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(s.ConnectTimeout, cancel)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, u.Scheme+"://"+u.Host+u.EscapedPath()+q, nil)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("bench: subscribe: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("User-Agent", "ssekit-bench")
	if s.SubscriberToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.SubscriberToken)
	}
	resp, err := g.cc.RoundTrip(req)
	if !timer.Stop() && err == nil {
		resp.Body.Close()
		err = context.DeadlineExceeded
	}
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("bench: subscribe: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		line := readLine(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, nil, fmt.Errorf("bench: subscribe: %s: %s", resp.Status, line)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		resp.Body.Close()
		cancel()
		return nil, nil, fmt.Errorf("bench: subscribe: Content-Type %q, not text/event-stream", resp.Header.Get("Content-Type"))
	}
	return g.conn, resp.Body, nil
}
