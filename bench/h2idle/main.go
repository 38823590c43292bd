// Command h2idle measures what an idle HTTP/2 subscriber costs a hub's
// memory. ssekit bench speaks HTTP/1.1 only; this opens -streams idle
// subscriptions over h2c (HTTP/2 without TLS, prior knowledge), -per-conn
// streams on each connection, each on a topic of its own that gets nothing,
// and reads the hub's resident set size from /proc/PID/status before the
// first stream and -settle after the last one got its headers.
//
// Run it against a fresh hub on this machine:
//
//	ssekit serve --addr 127.0.0.1:18090 --store memory --data-dir "$(mktemp -d)" \
//	    --jwt-key "$KEY" --log-level warn &
//	go run ./bench/h2idle -hub http://127.0.0.1:18090/.well-known/mercure \
//	    -jwt-key "$KEY" -pid $! -streams 10000 -per-conn 250
//
// -per-conn is capped by the hub's SETTINGS_MAX_CONCURRENT_STREAMS (250 for
// Go's net/http); -per-conn 1 opens one connection per stream. -proto h1
// does the same over HTTP/1.1 (one connection per stream), for comparison
// from the same program.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// report is what one run measured; printed as one JSON object with -json.
type report struct {
	Proto            string  `json:"proto"`
	Streams          int     `json:"streams"`
	PerConn          int     `json:"per_conn"`
	Connections      int64   `json:"connections"` // TCP connections dialled
	Opened           int64   `json:"opened"`
	Failed           int64   `json:"failed"`
	FirstError       string  `json:"first_error,omitempty"`
	ConnectSeconds   float64 `json:"connect_seconds"`
	RSSBaseline      int64   `json:"rss_baseline_bytes"`
	RSSConnected     int64   `json:"rss_connected_bytes"`
	RSSPerStream     float64 `json:"rss_per_stream_bytes"`
	ThreadsConnected int     `json:"threads_connected"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "h2idle:", err)
		os.Exit(1)
	}
}

func run() error {
	hubURL := flag.String("hub", "http://127.0.0.1:8080/.well-known/mercure", "the hub's subscribe `URL` (http://, for h2c)")
	key := flag.String("jwt-key", "", "HS256 `SECRET` to mint the subscribers' token with")
	token := flag.String("jwt", "", "subscriber bearer `TOKEN` (instead of -jwt-key)")
	pid := flag.Int("pid", 0, "the hub's process `ID` (required: its RSS is the measurement)")
	streams := flag.Int("streams", 10000, "idle subscriptions to open (`N`)")
	perConn := flag.Int("per-conn", 250, "streams per HTTP/2 connection (`N`)")
	proto := flag.String("proto", "h2c", "h2c, h2 (TLS: an https:// -hub) or h1 (TLS too with an https:// -hub)")
	insecure := flag.Bool("insecure", false, "accept the hub's TLS certificate without verifying it (a self-signed test certificate)")
	settle := flag.Duration("settle", 3*time.Second, "wait after the last stream opened before reading the RSS (`DURATION`)")
	hold := flag.Duration("hold", 0, "keep the streams open this long after measuring (`DURATION`), e.g. to profile the hub")
	concurrency := flag.Int("concurrency", 100, "streams opened at once (`N`)")
	asJSON := flag.Bool("json", false, "print the report as one JSON object")
	flag.Parse()

	if *pid == 0 {
		return errors.New("-pid is required")
	}
	if *proto != "h2c" && *proto != "h2" && *proto != "h1" {
		return fmt.Errorf("-proto %q: want h2c, h2 or h1", *proto)
	}
	if *perConn < 1 || *proto == "h1" {
		*perConn = 1
	}
	bearer := *token
	if bearer == "" && *key != "" {
		bearer = mint(*key)
	}

	rep := report{Proto: *proto, Streams: *streams, PerConn: *perConn}
	base, err := procStatus(*pid)
	if err != nil {
		return err
	}
	rep.RSSBaseline = base.rss

	var dials atomic.Int64
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
	newClient := func() *http.Client {
		tr := &http.Transport{DialContext: dial, Protocols: new(http.Protocols), DisableCompression: true}
		if *insecure {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		}
		switch *proto {
		case "h2c":
			tr.Protocols.SetUnencryptedHTTP2(true)
		case "h2":
			tr.Protocols.SetHTTP2(true)
		default:
			tr.Protocols.SetHTTP1(true)
		}
		return &http.Client{Transport: tr}
	}

	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	var (
		mu       sync.Mutex
		bodies   []io.Closer
		firstErr error
		failed   atomic.Int64
	)
	open := func(c *http.Client, i int) {
		u := *hubURLParsed(*hubURL)
		q := u.Query()
		q.Set("topic", "urn:h2idle:"+runID+":"+strconv.Itoa(i))
		u.RawQuery = q.Encode()
		req, _ := http.NewRequest(http.MethodGet, u.String(), nil)
		req.Header.Set("Accept", "text/event-stream")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.Do(req)
		if err == nil && (resp.StatusCode != http.StatusOK || (*proto != "h1" && resp.ProtoMajor != 2)) {
			resp.Body.Close()
			err = fmt.Errorf("status %s over %s", resp.Status, resp.Proto)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed.Add(1)
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		bodies = append(bodies, resp.Body)
	}

	start := time.Now()
	sem := make(chan struct{}, *concurrency)
	var wg sync.WaitGroup
	for first := 0; first < *streams; first += *perConn {
		c := newClient()
		// The first stream of a connection alone, so the transport dials
		// once and the rest share the connection.
		open(c, first)
		for i := first + 1; i < min(first+*perConn, *streams); i++ {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				open(c, i)
			}()
		}
	}
	wg.Wait()
	rep.ConnectSeconds = time.Since(start).Seconds()
	rep.Opened = int64(len(bodies))
	rep.Failed = failed.Load()
	rep.Connections = dials.Load()
	if firstErr != nil {
		rep.FirstError = firstErr.Error()
	}

	time.Sleep(*settle)
	conn, err := procStatus(*pid)
	if err != nil {
		return err
	}
	rep.RSSConnected = conn.rss
	rep.ThreadsConnected = conn.threads
	if rep.Opened > 0 {
		rep.RSSPerStream = float64(conn.rss-base.rss) / float64(rep.Opened)
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(rep)
	} else {
		fmt.Printf("%s: %d streams on %d connections (%d per connection) in %.1fs, %d failed\n",
			rep.Proto, rep.Opened, rep.Connections, rep.PerConn, rep.ConnectSeconds, rep.Failed)
		if rep.FirstError != "" {
			fmt.Printf("first failure: %s\n", rep.FirstError)
		}
		fmt.Printf("hub RSS %.1f MiB before, %.1f MiB connected: %.2f KiB per idle stream (%d threads)\n",
			float64(rep.RSSBaseline)/(1<<20), float64(rep.RSSConnected)/(1<<20), rep.RSSPerStream/1024, rep.ThreadsConnected)
	}
	time.Sleep(*hold)
	for _, b := range bodies {
		b.Close()
	}
	return nil
}

func hubURLParsed(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "h2idle: -hub:", err)
		os.Exit(2)
	}
	return u
}

// mint returns an HS256 token granting {"mercure":{"subscribe":["*"]}}.
func mint(secret string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body := enc.EncodeToString([]byte(`{"mercure":{"subscribe":["*"]}}`))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + enc.EncodeToString(mac.Sum(nil))
}

type status struct {
	rss     int64
	threads int
}

// procStatus reads VmRSS and Threads from /proc/PID/status.
func procStatus(pid int) (status, error) {
	var st status
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return st, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(string(f[0]), 10, 64)
				st.rss = n << 10
			}
		} else if v, ok := bytes.CutPrefix(line, []byte("Threads:")); ok {
			st.threads, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	return st, nil
}
