package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ssekit/sse/publisher"
)

const publishBatchUsage = `
With --batch, standard input is a stream of updates, one per line, sent to
the hub's batch route over one connection (an ssekit extension,
docs/publishing.md) and acknowledged as they are stored: each id is printed
on stdout as soon as the hub acknowledges it. Without --topic each line is
an update as JSON ({"topic":"…","data":"…","id":"…","type":"…","retry":1000,
"private":true}); with --topic each line is the data of an update to those
topics, with --type, --retry and --private. An empty line is a keep-alive.
The first update the hub refuses ends the stream: what came before it is
stored, it and what follows are not, and the exit status is 1 with its
line number.

  tail -f app.log | ssekit publish --batch --topic logs
  ssekit publish --batch < updates.ndjson
`

// maxBatchInputLine bounds a line read from standard input with --batch:
// the hub's default limit of one update.
const maxBatchInputLine = 1 << 20

// addBatchFlag registers --batch on the publish flags.
func addBatchFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("batch", false, "publish the updates of standard input, one per line (see below)")
}

// publishBatch is "ssekit publish --batch": opts are checked and resolved
// (hub, token) by runPublish; rest are the arguments left.
func (m *Main) publishBatch(ctx context.Context, opts *publishOptions, rest []string) error {
	switch {
	case len(rest) > 0 || opts.dataFile != "":
		return usageErrorf("--batch reads the updates from standard input: no DATA argument or --data-file")
	case opts.id != "":
		return usageErrorf("--batch cannot take --id: ids must differ (give each in its JSON line)")
	case len(opts.topics) == 0 && (opts.typ != "" || opts.retry != "" || opts.private):
		return usageErrorf("--type, --retry and --private apply to data lines: give --topic too (JSON lines carry their own)")
	}
	var retry time.Duration
	if opts.retry != "" {
		ms, err := strconv.ParseInt(opts.retry, 10, 64)
		if err != nil {
			return usageErrorf("--retry %q is out of range", opts.retry)
		}
		retry = time.Duration(ms) * time.Millisecond
	}

	body, bodyW := io.Pipe()
	go func() {
		bodyW.CloseWithError(copyBatchInput(bodyW, m.Stdin, opts, retry))
	}()
	defer body.Close() // ends the copy when the hub stops first

	headCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var headTimer *time.Timer
	if opts.timeout > 0 { // bounds the wait for the hub's answer, not the stream
		headTimer = time.AfterFunc(opts.timeout, cancel)
	}
	req, err := http.NewRequestWithContext(headCtx, http.MethodPost, publisher.BatchURL(opts.hub)+"?stream=1", body)
	if err != nil {
		return usageErrorf("--hub: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if opts.token != "" {
		req.Header.Set("Authorization", "Bearer "+opts.token)
	}
	resp, err := m.httpClient(opts.insecure).Do(req)
	if headTimer != nil && !headTimer.Stop() && err != nil {
		return fmt.Errorf("no answer from %s within %s", opts.hub, opts.timeout)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		msg := fmt.Sprintf("the hub answered %s", resp.Status)
		if t := oneLine(string(text)); t != "" {
			msg += ": " + t
		}
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			msg += " (--batch needs an ssekit hub: the batch route is an ssekit extension)"
		}
		return errors.New(msg)
	}
	return m.readAcks(resp.Body)
}

// copyBatchInput writes the update lines of in to w as the batch route
// takes them.
func copyBatchInput(w io.Writer, in io.Reader, opts *publishOptions, retry time.Duration) error {
	br := bufio.NewReaderSize(in, 64<<10)
	var out []byte
	for n := 1; ; n++ {
		line, err := readInputLine(br)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("standard input, line %d: %w", n, err)
		}
		out = out[:0]
		switch {
		case len(opts.topics) == 0 || len(line) == 0: // a JSON update, or a keep-alive
			out = append(append(out, line...), '\n')
		default:
			u := publisher.Update{Topics: opts.topics, Type: opts.typ, Data: string(line), Retry: retry, Private: opts.private}
			if out, err = publisher.AppendLine(out, &u); err != nil {
				return err
			}
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
}

// readInputLine reads one line without its line ending, at most
// maxBatchInputLine bytes.
func readInputLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxBatchInputLine+2 {
			return nil, fmt.Errorf("longer than %d bytes", maxBatchInputLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(line) > 0 {
			err = nil
		}
		if err != nil {
			return nil, err
		}
		return []byte(strings.TrimRight(string(line), "\r\n")), nil
	}
}

// readAcks prints the ids of the hub's acknowledgements until its last
// line: the count (success) or the refusal.
func (m *Main) readAcks(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 4<<20)
	acked := 0
	for sc.Scan() {
		var a struct {
			IDs    []string `json:"ids"`
			Count  *int     `json:"count"`
			Index  *int     `json:"index"`
			Status int      `json:"status"`
			Error  string   `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return fmt.Errorf("the hub sent %q, not an acknowledgement: is it an ssekit hub?", oneLine(sc.Text()))
		}
		switch {
		case a.Index != nil:
			return fmt.Errorf("the hub refused update %d (input line %d, counting updates only): %d %s: %s; the %d before it are stored",
				*a.Index, *a.Index+1, a.Status, http.StatusText(a.Status), oneLine(a.Error), *a.Index)
		case a.Count != nil:
			return nil
		}
		for _, id := range a.IDs {
			fmt.Fprintln(m.Stdout, id)
		}
		acked += len(a.IDs)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the stream ended after %d acknowledged updates: %w", acked, err)
	}
	return fmt.Errorf("the hub ended the stream after %d acknowledged updates, without its last line", acked)
}
