package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// defaultHubURL is where "ssekit serve" with no flags listens.
const defaultHubURL = "http://127.0.0.1:8080/.well-known/mercure"

const publishUsage = `Usage: ssekit publish --topic TOPIC [flags] [DATA | -]

Publishes one update to a Mercure-protocol hub (ssekit serve, or any other)
and prints the id the hub gave it. The data is the DATA argument, standard
input when it is "-", or the contents of --data-file; with none of them
the update has no data. Flags may come before or after DATA.

The token comes from --token or the SSEKIT_TOKEN environment variable;
"ssekit serve" prints one for its development key, and "ssekit token" mints
others. Or --jwt-key (SSEKIT_JWT_KEY, as for "ssekit serve") signs one for
this update: for a draft-08 hub (Mercure 1.0; --draft, asked from the hub by
default) an RFC 9068 access token of --issuer for the hub's resource
identifier, else a draft-07 one.

Exit status: 0 when the hub accepted the update (its id is on stdout); 1
with the hub's status and one-line reason on stderr when it did not, or
when it cannot be reached; 2 for a bad command line.

Examples:

  SSEKIT_TOKEN=… ssekit publish --topic demo hello
  ssekit publish --topic https://example.com/books/1 --type update --data-file book.json
  date | ssekit publish --hub https://hub.example/.well-known/mercure --topic clock -
  ssekit publish --jwt-key "$KEY" --issuer https://app.example --topic demo hi   # Mercure 1.0
`

// publishOptions are the flags of "ssekit publish".
type publishOptions struct {
	hub      string
	topics   []string
	dataFile string
	typ      string
	id       string
	retry    string
	private  bool
	token    string
	timeout  time.Duration
	insecure bool
	mc       mercureClient
}

func runPublish(ctx context.Context, m *Main, args []string) error {
	var opts publishOptions
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.StringVar(&opts.hub, "hub", "", "the hub's `URL` (default "+defaultHubURL+") [SSEKIT_HUB]")
	fs.Func("topic", "`TOPIC` of the update (repeatable, at least one: the first is canonical, the others alternate)", func(s string) error {
		if s == "" {
			return errors.New("empty topic")
		}
		opts.topics = append(opts.topics, s)
		return nil
	})
	fs.StringVar(&opts.dataFile, "data-file", "", "read the data from `FILE` (- for standard input)")
	fs.StringVar(&opts.typ, "type", "", "SSE event `TYPE` (subscribers see message when none is given)")
	fs.StringVar(&opts.id, "id", "", "the update's `ID` (default: the hub makes one)")
	fs.StringVar(&opts.retry, "retry", "", "reconnection time for subscribers, in `MILLISECONDS`")
	fs.BoolVar(&opts.private, "private", false, "publish a private update: only subscribers whose token allows one of its topics get it")
	fs.StringVar(&opts.token, "token", "", "publisher `JWT` [SSEKIT_TOKEN]")
	fs.DurationVar(&opts.timeout, "timeout", 30*time.Second, "give up after `DURATION` (0: never)")
	fs.BoolVar(&opts.insecure, "insecure", false, "do not verify the hub's TLS certificate")
	addDraftFlag(fs, &opts.mc)
	addMintFlags(fs, &opts.mc, "this update")
	batch := addBatchFlag(fs)

	rest, err := m.parseFlags(fs, publishUsage+publishBatchUsage, args)
	if err != nil {
		return err
	}
	m.mintEnv(fs, &opts.mc)
	if len(opts.topics) == 0 && !*batch {
		return usageErrorf("--topic is required (see 'ssekit publish --help')")
	}
	if len(rest) > 1 {
		return usageErrorf("want at most one DATA argument, got %d: quote data that has spaces", len(rest))
	}
	if len(rest) == 1 && opts.dataFile != "" {
		return usageErrorf("give the data as an argument or with --data-file, not both")
	}
	if strings.ContainsAny(opts.id, "\r\n\x00") || strings.HasPrefix(opts.id, "#") {
		return usageErrorf("--id must be one line without NUL and must not start with #")
	}
	if strings.ContainsAny(opts.typ, "\r\n") {
		return usageErrorf("--type must be one line")
	}
	if opts.retry != "" && strings.Trim(opts.retry, "0123456789") != "" {
		return usageErrorf("--retry must be ASCII digits (milliseconds), got %q", opts.retry)
	}
	if opts.timeout < 0 {
		return usageErrorf("--timeout must not be negative")
	}
	if opts.hub == "" {
		opts.hub = m.getenv("SSEKIT_HUB")
	}
	if opts.hub == "" {
		opts.hub = defaultHubURL
	}
	if u, err := url.Parse(opts.hub); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("--hub %q is not an http:// or https:// URL", opts.hub)
	}
	if opts.token == "" {
		opts.token = m.getenv("SSEKIT_TOKEN")
	}
	if err := m.publishDraft(ctx, &opts); err != nil {
		return err
	}
	if *batch {
		return m.publishBatch(ctx, &opts, rest)
	}

	form := url.Values{"topic": opts.topics}
	switch {
	case len(rest) == 1 && rest[0] == "-", opts.dataFile == "-":
		b, err := io.ReadAll(m.Stdin)
		if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
		form.Set("data", string(b))
	case len(rest) == 1:
		form.Set("data", rest[0])
	case opts.dataFile != "":
		b, err := os.ReadFile(opts.dataFile)
		if err != nil {
			return err
		}
		form.Set("data", string(b))
	}
	for name, v := range map[string]string{"id": opts.id, "type": opts.typ, "retry": opts.retry} {
		if v != "" {
			form.Set(name, v)
		}
	}
	if opts.private {
		form.Set("private", "on")
	}

	id, err := m.publish(ctx, &opts, form)
	if err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, id)
	return nil
}

// errTimeout is the cause of a --timeout expiry.
var errTimeout = errors.New("timeout")

// publish posts the form to the hub and returns the id it answered.
func (m *Main) publish(ctx context.Context, opts *publishOptions, form url.Values) (string, error) {
	if opts.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, opts.timeout, errTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, opts.hub, strings.NewReader(form.Encode()))
	if err != nil {
		return "", usageErrorf("--hub: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if opts.token != "" {
		req.Header.Set("Authorization", "Bearer "+opts.token)
	}
	resp, err := m.httpClient(opts.insecure).Do(req)
	if err != nil {
		if errors.Is(context.Cause(ctx), errTimeout) {
			return "", fmt.Errorf("no answer from %s within %s", opts.hub, opts.timeout)
		}
		return "", err
	}
	defer resp.Body.Close()
	// An id is one short line and a reason too; more is not worth reading.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("reading the hub's answer: %w", err)
	}
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("the hub answered %s", resp.Status)
		if text != "" {
			msg += ": " + oneLine(text)
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized && opts.token == "":
			msg += " (give a token with --token or SSEKIT_TOKEN, or a key with --jwt-key; 'ssekit serve' prints one, 'ssekit token' mints one)"
		case resp.StatusCode == http.StatusUnauthorized: // a 403 is a valid token's missing grant
			msg += m.publishHint(ctx, opts)
		}
		return "", errors.New(msg)
	}
	if text == "" || strings.ContainsAny(text, "\r\n") {
		// Not a Mercure hub: it answers 200 with the id alone.
		return "", fmt.Errorf("%s answered 200 without an update id: is it a Mercure hub's URL (…/.well-known/mercure)?", opts.hub)
	}
	return text, nil
}
