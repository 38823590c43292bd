package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/ssekit/sse/bench"
	"github.com/ssekit/sse/debugger"
	"github.com/ssekit/sse/jwtauth"
)

const benchUsage = `Usage: ssekit bench [flags]
       ssekit bench --url URL [-X METHOD] [-H 'Name: value']... [-d BODY] [flags]

Two modes. Without --url, the Mercure mode: load-tests a Mercure-protocol
hub (ssekit serve, or any other Mercure hub), as below. With --url, the
generic mode: load-tests any event-stream endpoint (see "Generic mode").

Mercure mode: load-tests a Mercure-protocol hub.
It connects --subscribers subscribers, a --hot-share of them on hot topics
(the others each on a topic of its own that gets nothing, i.e. idle), waits
until every one has its response headers, then publishes --updates updates
at --rate per second to the hot topics, and waits until every expected
delivery arrived or none arrived for --drain. It reports, per subscriber and
in total: delivered, lost, duplicated and out-of-order updates, the latency
from publish to receive (p50, p99, max), the connect time, the publish rate
and, with --pid, the hub's memory (RSS before and with the subscribers
connected: the cost of an idle subscriber) and CPU time (per delivery).

A progress line goes to stderr every second; the report goes to stdout, as
a table or, with --json, as one JSON object. The hub must be on a loopback
address unless --allow-remote is given.

Drafts: --draft (default auto: asked from the hub, by its RFC 9728 metadata
document or its answer to match=) decides how subscribers subscribe and
which tokens --jwt-key mints. Draft-08 (Mercure 1.0 in its default mode,
ssekit serve): match= and, with --issuer, RFC 9068 access tokens (at+jwt,
iss --issuer, aud --audience or the hub's metadata resource) granting every
topic; draft-07: topic= and tokens granting
{"mercure":{"publish":["*"],"subscribe":["*"]}}. --jwt TOKEN is sent as
the publisher's and every subscriber's bearer token instead.

Many subscribers: each is one TCP connection. The limit on open files is
raised as far as the process may (as root, past the hard limit); the hub
needs the same ("ulimit -n 200000" in its shell). On Linux, connections to
an IPv4 loopback hub use source addresses 127.0.0.2, 127.0.0.3, … (16 000
per address), so 50 000 subscribers do not exhaust the ephemeral ports.

Publishers: --publishers of them, each sending one request at a time on
a keep-alive connection of its own. To a plain-HTTP hub the requests are
written by hand, so the generator spends little of the machine it shares
with the hub; to an https hub they go through net/http (HTTP/2 where the
hub offers it).

Generic mode (--url): --clients clients open the stream at URL, with the
request that -X, -H, -d and --last-event-id describe (as for ssekit
listen), started at --connect-rate per second. Each is an EventSource: it
reconnects when the stream ends or the network fails, honouring the
server's retry: field; after a status other than 200 or a wrong
Content-Type it starts over after --retry. A client stops once it got
--events events (0: never); the run stops when every client stopped or
--duration (default 10s) ended. The report: clients connected and
completed, attempts and reconnects, errors by kind (status code, content
type, network, other; clean ends of stream apart), events received (per
second in total, per client, and the slowest client's), and p50/p99/max of
the connect time (request to response headers), the first-event latency
(client start to its first event) and the inter-arrival time (between two
events of one connection). Bounds: at most 10000 clients, 10000 per second,
and an hour; an event over --max-event-size (default 256 KiB) ends its
stream (an "other" error), and a redirect off loopback is not followed
without --allow-remote.

Exit status: 0 when the run completed (whatever it measured); 1 when it
could not run (no subscriber or client connected, publishes refused, bad
target); 2 for a bad command line; 130 when interrupted (the partial report
is printed first).

Examples:

  ssekit bench --subscribers 10000 --updates 1000 --rate 100 --pid "$(pgrep -n ssekit)"
  ssekit bench --subscribers 10000 --all-active --rate 2 --updates 60 --jwt-key "$KEY"
  ssekit bench --subscribers 0 --updates 100000 --rate 0 --publishers 8 --json
  ssekit bench --subscribers 0 --updates 100000 --rate 0 --publishers 32 --batch 100 --hub-pid "$PID"  # ssekit's batch route
  ssekit bench --jwt-key "$KEY" --issuer https://localhost --audience https://localhost/.well-known/mercure  # Mercure 1.0
  ssekit bench --url http://127.0.0.1:8000/events --clients 100 --events 50
  ssekit bench --url http://127.0.0.1:8080/v1/chat -d @prompt.json -H 'Authorization: Bearer x' --clients 20 --duration 30s
`

// mercureOnlyFlags and streamOnlyFlags are the flags of one mode of bench
// only: giving one in the other mode is a usage error, not silently ignored.
var (
	mercureOnlyFlags = []string{"hub", "subscribers", "hot-share", "hot-topics", "all-active", "updates", "rate",
		"payload", "publishers", "batch", "jwt", "jwt-key", "issuer", "audience", "draft", "pid", "hub-pid", "drain", "connect-concurrency"}
	streamOnlyFlags = []string{"clients", "connect-rate", "events", "retry", "max-event-size", "X", "H", "d", "last-event-id"}
)

func runBench(ctx context.Context, m *Main, args []string) error {
	var (
		cfg     bench.Config
		token   string
		key     string
		jsonOut bool
		quiet   bool
		rf      requestFlags
		scfg    bench.StreamConfig
		mc      mercureClient
	)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&cfg.Hub, "hub", bench.DefaultHub, "the hub's `URL`")
	fs.IntVar(&cfg.Subscribers, "subscribers", 1000, "subscriber connections to open (`N`)")
	fs.Float64Var(&cfg.HotShare, "hot-share", bench.DefaultHotShare, "`FRACTION` of subscribers on hot topics; the others idle")
	fs.IntVar(&cfg.HotTopics, "hot-topics", 1, "spread hot subscribers and updates round-robin over `N` topics")
	fs.BoolVar(&cfg.AllActive, "all-active", false, "put every subscriber on a hot topic (--hot-share 1)")
	fs.IntVar(&cfg.Updates, "updates", 1000, "updates to publish (`N`)")
	fs.Float64Var(&cfg.Rate, "rate", 100, "publish `RATE` in updates per second, over all publishers (0: as fast as possible)")
	fs.IntVar(&cfg.Payload, "payload", bench.DefaultPayload, "data size of each update in `BYTES`")
	fs.IntVar(&cfg.Publishers, "publishers", 1, "publishers (`N`), each with one request at a time on a connection of its own")
	fs.IntVar(&cfg.Batch, "batch", 1, "publish `N` updates per request on ssekit's batch route (1: one form POST each)")
	fs.StringVar(&token, "jwt", "", "bearer `TOKEN` for publishing and subscribing")
	fs.StringVar(&key, "jwt-key", "", "HS256 `SECRET` to mint publisher and subscriber tokens with")
	fs.StringVar(&mc.issuer, "issuer", "", "draft-08: the `ISS` of the access tokens --jwt-key mints, one the hub trusts for it [SSEKIT_ISSUER]")
	fs.StringVar(&mc.audience, "audience", "", "draft-08: the `URL` minted access tokens are for (aud; default: the resource of the hub's metadata, else --hub) [SSEKIT_RESOURCE]")
	addDraftFlag(fs, &mc)
	fs.IntVar(&cfg.PID, "pid", 0, "the hub's process id on this machine: report its RSS and CPU (`PID`)")
	fs.IntVar(&cfg.PID, "hub-pid", 0, "the same as --pid (`PID`)")
	fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "cap on the connect and publish phases (`DURATION`)")
	fs.DurationVar(&cfg.Drain, "drain", bench.DefaultDrain, "after the last publish, stop when no delivery arrived for `DURATION`")
	fs.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", bench.DefaultConnectConcurrency, "connections opened at once (`N`)")
	fs.BoolVar(&cfg.HTTP2, "http2", false, "subscribe over HTTP/2: h2c (prior knowledge) for an http hub, ALPN h2 for https")
	fs.IntVar(&cfg.StreamsPerConn, "streams-per-conn", 1, "with --http2: subscriber streams sharing one connection (`N`)")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a hub that is not on a loopback address")
	fs.StringVar(&scfg.URL, "url", "", "generic mode: load the event stream at `URL`")
	fs.IntVar(&scfg.Clients, "clients", bench.DefaultStreamClients, "generic mode: clients to start (`N`)")
	fs.Float64Var(&scfg.ConnectRate, "connect-rate", bench.DefaultStreamConnectRate, "generic mode: clients started per second (`RATE`)")
	fs.IntVar(&scfg.Events, "events", 0, "generic mode: a client stops after `N` events (0: at the end of --duration)")
	fs.DurationVar(&scfg.Retry, "retry", bench.DefaultStreamRetry, "generic mode: reconnection time until the server sets one, and the wait after a refused stream (`DURATION`)")
	fs.IntVar(&scfg.MaxEventSize, "max-event-size", bench.DefaultStreamMaxEvent, "generic mode: a larger event ends the stream (`BYTES`)")
	addRequestFlags(fs, &rf) // -X, -H, -d, --last-event-id, --insecure (both modes)
	fs.BoolVar(&jsonOut, "json", false, "print the report as one JSON object")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")

	rest, err := m.parseFlags(fs, benchUsage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("takes no arguments, got %q (the hub is --hub URL, an endpoint --url URL)", rest[0])
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["url"] {
		for _, name := range mercureOnlyFlags {
			if set[name] {
				return usageErrorf("-%s is for the Mercure mode, not with --url", name)
			}
		}
		if !set["duration"] {
			cfg.Duration = bench.DefaultStreamDuration
		}
		scfg.Duration, scfg.AllowRemote = cfg.Duration, cfg.AllowRemote
		return m.runStreamBench(ctx, &rf, scfg, jsonOut, quiet)
	}
	for _, name := range streamOnlyFlags {
		if set[name] {
			return usageErrorf("-%s is for the generic mode: give --url", name)
		}
	}
	insecure := rf.spec.Insecure
	if token != "" && key != "" {
		return usageErrorf("--jwt and --jwt-key exclude each other")
	}
	if cfg.HotShare <= 0 && !cfg.AllActive {
		return usageErrorf("--hot-share must be above 0")
	}
	if cfg.Payload <= 0 {
		return usageErrorf("--payload must be above 0")
	}
	if cfg.Batch <= 0 || cfg.Batch > bench.MaxBatch {
		return usageErrorf("--batch must be between 1 and %d", bench.MaxBatch)
	}
	if cfg.Publishers <= 0 || cfg.HotTopics <= 0 || cfg.ConnectConcurrency <= 0 {
		return usageErrorf("--publishers, --hot-topics and --connect-concurrency must be above 0")
	}
	if cfg.Duration <= 0 || cfg.Drain <= 0 {
		return usageErrorf("--duration and --drain must be above 0")
	}
	m.mintEnv(fs, &mc)
	var client *http.Client
	if insecure {
		client = debugger.InsecureClient(&http.Client{})
	} else {
		client = &http.Client{}
	}
	if err := cfg.Check(ctx); errors.Is(err, bench.ErrInvalidConfig) {
		return &usageError{err.Error()}
	} else if err != nil {
		return err
	}
	if err := m.resolve(ctx, client, &mc, cfg.Hub, token); err != nil {
		return err
	}
	cfg.Draft08 = mc.draft == draft08
	if key != "" {
		if _, err := jwtauth.NewKey("HS256", key); err != nil {
			return fmt.Errorf("--jwt-key: %w", err) // the hub would refuse it too
		}
		mc.key, mc.alg = key, "HS256"
		exp := time.Now().Add(cfg.Duration + cfg.Drain + time.Hour)
		var note string
		if token, note, err = mc.mint(cfg.Hub, true, true, exp); err != nil {
			return err
		}
		if note != "" {
			m.logf("bench", "%s", note)
		}
	}
	cfg.PublisherToken, cfg.SubscriberToken = token, token
	if insecure {
		cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	if !quiet {
		cfg.Progress = m.Stderr
	}

	rep, err := bench.Run(ctx, cfg)
	if errors.Is(err, bench.ErrInvalidConfig) {
		return &usageError{err.Error()}
	}
	if rep != nil && (err == nil || ctx.Err() != nil) {
		if jsonOut {
			if werr := rep.WriteJSON(m.Stdout); werr != nil {
				return werr
			}
		} else if werr := rep.WriteText(m.Stdout); werr != nil {
			return werr
		}
	}
	return err
}

// runStreamBench runs bench's generic mode on rf's request to scfg.URL and
// prints the report, even a partial one (interrupted, nobody connected).
func (m *Main) runStreamBench(ctx context.Context, rf *requestFlags, scfg bench.StreamConfig, jsonOut, quiet bool) error {
	if err := debugger.CheckURL(scfg.URL); err != nil {
		return usageErrorf("--url %q is not an http:// or https:// URL", scfg.URL)
	}
	if scfg.Clients <= 0 || scfg.ConnectRate <= 0 || scfg.Retry <= 0 || scfg.Duration <= 0 {
		return usageErrorf("--clients, --connect-rate, --retry and --duration must be above 0")
	}
	spec, err := m.requestSpec(rf, scfg.URL)
	if err != nil {
		return err
	}
	if _, err := spec.NewRequest(ctx); err != nil { // a bad method or header says so now, not once per client
		return usageErrorf("%v", err)
	}
	scfg.NewRequest = spec.NewRequest
	scfg.HTTPClient = m.httpClient(spec.Insecure)
	if !quiet {
		scfg.Progress = m.Stderr
	}
	rep, err := bench.RunStream(ctx, scfg)
	if errors.Is(err, bench.ErrInvalidConfig) {
		return &usageError{err.Error()}
	}
	if rep != nil {
		write := rep.WriteText
		if jsonOut {
			write = rep.WriteJSON
		}
		if werr := write(m.Stdout); werr != nil {
			return werr
		}
	}
	return err
}
