// Package bench is the load generator behind `ssekit bench`. It speaks the
// Mercure protocol, so it measures ssekit's hub or any other Mercure hub:
// it connects many subscribers (a share of them on hot topics, the rest
// idle on topics nobody publishes to), publishes updates at a fixed rate,
// and reports what each subscriber got — delivered, lost, duplicated, out of
// order — with the publish-to-receive latency, the connect time and, given
// the hub's process id, the hub's memory and CPU.
//
// Every update's data is "SEQ UNIXNANO " padded with 'x' to the payload
// size, so a receiver knows which update it got and when it was published.
// Topics carry a random run id, so retained history of an earlier run never
// counts.
//
// Subscribers are raw TCP (or TLS) connections with a hand-written HTTP/1.1
// GET and a small buffered reader, far cheaper than one http.Client each:
// one process holds tens of thousands of them. On Linux, connections to an
// IPv4 loopback hub spread their source addresses over 127.0.0.2, 127.0.0.3…
// (every address in 127/8 is local), 16 000 per address, so they do not run
// out of ephemeral ports (about 28 000 per source address by default).
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults for Config fields left at zero.
const (
	DefaultHub                = "http://127.0.0.1:8080/.well-known/mercure"
	DefaultHotShare           = 0.1
	DefaultPayload            = 100
	DefaultDuration           = 5 * time.Minute
	DefaultConnectConcurrency = 200
	DefaultConnectTimeout     = 10 * time.Second
	DefaultPublishTimeout     = 30 * time.Second
	DefaultDrain              = 2 * time.Second
	DefaultSettle             = time.Second
	DefaultProgressInterval   = time.Second
)

// Bounds that keep a run's memory and time finite.
const (
	MaxSubscribers = 1 << 20
	// MaxStreamsPerConn bounds Config.StreamsPerConn.
	MaxStreamsPerConn = 1000
	MaxUpdates        = 1 << 24
	MaxPayload        = 1 << 20
	MaxPublishers     = 1024
	MaxBatch          = 1000 // the hub's default most updates per batch
	MaxHotTopics      = 1 << 16
	// maxSeenBytes bounds the per-subscriber bitsets that detect loss and
	// duplicates: hot subscribers × updates per hot topic / 8.
	maxSeenBytes = 512 << 20
)

// Sentinel errors.
var (
	// ErrRemoteTarget is returned for a hub that is not on a loopback
	// address when Config.AllowRemote is not set: a load generator must not
	// be pointed at someone else's server by accident.
	ErrRemoteTarget = errors.New("bench: hub is not on a loopback address")
	// ErrInvalidConfig wraps every other configuration error.
	ErrInvalidConfig = errors.New("bench: invalid configuration")
	// ErrPublishRefused is returned when the hub refuses a publish with a
	// 4xx status (usually a missing or wrong JWT): nothing else would work.
	ErrPublishRefused = errors.New("bench: publish refused")
	// ErrNoSubscriber is returned when subscribers were asked for and none
	// could connect.
	ErrNoSubscriber = errors.New("bench: no subscriber could connect")
)

// Config describes one run. The zero value connects nobody and publishes
// nothing; each field says its default.
type Config struct {
	// Hub is the hub's URL, http or https. Default DefaultHub.
	Hub string

	// Subscribers is how many subscriber connections to open.
	Subscribers int
	// HotShare is the fraction of subscribers on hot topics (those that
	// receive every update of their topic); the others subscribe each to a
	// topic of its own that never gets an update. Zero means
	// DefaultHotShare. At least one subscriber is hot when HotShare > 0.
	HotShare float64
	// AllActive puts every subscriber on a hot topic (HotShare 1).
	AllActive bool
	// HotTopics spreads hot subscribers round-robin over this many topics;
	// update i goes to hot topic i mod HotTopics. Zero means 1.
	HotTopics int

	// Updates is how many updates to publish.
	Updates int
	// Rate is the overall publish rate in updates per second. Zero means as
	// fast as the publishers go.
	Rate float64
	// Payload is the size of each update's data in bytes (at least the
	// sequence number and timestamp fit, whatever the size). Zero means
	// DefaultPayload.
	Payload int
	// Publishers is how many publish requests may be in flight at once;
	// publisher p sends updates p, p+Publishers, … in order. Zero means 1.
	Publishers int
	// Batch, above 1, publishes that many updates per request on ssekit's
	// batch route (the hub URL + "/batch", one NDJSON line per update, see
	// docs/publishing.md) instead of one form POST each; publisher p then
	// sends its updates p, p+Publishers, … Batch at a time. Publish latency
	// is per request. Zero or 1 means single form publishes.
	Batch int

	// Draft08 subscribes with draft-08's match= (Mercure 1.0, whose default
	// mode refuses draft-07's topic=) instead of topic=. The topics are
	// plain URIs, so both match the same updates.
	Draft08 bool

	// PublisherToken and SubscriberToken are JWTs sent as
	// "Authorization: Bearer"; empty sends none.
	PublisherToken  string
	SubscriberToken string

	// PID, when not zero, is the hub's process id on this machine: its RSS
	// and CPU time are read from /proc before, between and after the phases.
	PID int

	// Duration caps the connect and publish phases together; the drain
	// that follows adds at most Drain. Zero means DefaultDuration.
	Duration time.Duration
	// ConnectConcurrency bounds connections being opened at once. Zero
	// means DefaultConnectConcurrency.
	ConnectConcurrency int
	// ConnectTimeout bounds one subscriber's connect, TLS handshake and
	// response headers. Zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// PublishTimeout bounds one publish request. Zero means
	// DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Drain is how long to wait, after the last publish, for deliveries that
	// make no progress: the run ends when every expected delivery arrived or
	// none arrived for Drain. Zero means DefaultDrain.
	Drain time.Duration
	// Settle is how long to wait after the subscribers connected before
	// reading the hub's RSS (only with PID). Zero means DefaultSettle;
	// negative means none.
	Settle time.Duration

	// HTTP2 subscribes over HTTP/2: h2c with prior knowledge for an http
	// hub, TLS with ALPN h2 for https. Publishing stays on HTTP/1.1.
	HTTP2 bool
	// StreamsPerConn is how many subscriber streams share one HTTP/2
	// connection (HTTP2 only; at most the hub's
	// SETTINGS_MAX_CONCURRENT_STREAMS). Zero means 1.
	StreamsPerConn int

	// AllowRemote permits a hub that is not on a loopback address.
	AllowRemote bool

	// TLSConfig is used for https hubs; nil means the system roots.
	TLSConfig *tls.Config

	// Progress, when not nil, receives a progress line every
	// ProgressInterval (zero means DefaultProgressInterval).
	Progress         io.Writer
	ProgressInterval time.Duration
}

// settings is a Config with defaults applied and derived values computed.
type settings struct {
	Config
	hubURL    *url.URL
	hot       int   // hot subscribers
	hotCount  []int // hot subscribers per hot topic
	perTopic  int   // updates per hot topic, rounded up
	loopback4 bool  // the hub resolves to IPv4 loopback
	addr      string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// Check reports what Run would refuse in c before it starts (an
// ErrInvalidConfig, or a hub off loopback without AllowRemote), so that a
// caller can check before it asks the hub anything.
func (c Config) Check(ctx context.Context) error {
	_, err := c.prepare(ctx)
	return err
}

// prepare applies defaults, validates the configuration and checks that the
// target is on loopback unless AllowRemote.
func (c Config) prepare(ctx context.Context) (*settings, error) {
	s := &settings{Config: c}
	if s.Hub == "" {
		s.Hub = DefaultHub
	}
	if s.HotShare == 0 {
		s.HotShare = DefaultHotShare
	}
	if s.AllActive {
		s.HotShare = 1
	}
	if s.HotTopics == 0 {
		s.HotTopics = 1
	}
	if s.Payload == 0 {
		s.Payload = DefaultPayload
	}
	if s.Publishers == 0 {
		s.Publishers = 1
	}
	if s.Batch == 0 {
		s.Batch = 1
	}
	s.Duration = orDefault(s.Duration, DefaultDuration)
	s.ConnectTimeout = orDefault(s.ConnectTimeout, DefaultConnectTimeout)
	s.PublishTimeout = orDefault(s.PublishTimeout, DefaultPublishTimeout)
	s.Drain = orDefault(s.Drain, DefaultDrain)
	s.Settle = orDefault(s.Settle, DefaultSettle)
	s.ProgressInterval = orDefault(s.ProgressInterval, DefaultProgressInterval)
	if s.ConnectConcurrency == 0 {
		s.ConnectConcurrency = DefaultConnectConcurrency
	}

	if s.StreamsPerConn == 0 {
		s.StreamsPerConn = 1
	}
	switch {
	case s.StreamsPerConn < 0 || s.StreamsPerConn > MaxStreamsPerConn:
		return nil, invalid("streams per connection must be between 1 and %d; got %d", MaxStreamsPerConn, s.StreamsPerConn)
	case s.Subscribers < 0 || s.Subscribers > MaxSubscribers:
		return nil, invalid("subscribers must be between 0 and %d; got %d", MaxSubscribers, s.Subscribers)
	case s.Updates < 0 || s.Updates > MaxUpdates:
		return nil, invalid("updates must be between 0 and %d; got %d", MaxUpdates, s.Updates)
	case s.HotShare < 0 || s.HotShare > 1:
		return nil, invalid("hot share must be between 0 and 1; got %g", s.HotShare)
	case s.HotTopics < 0 || s.HotTopics > MaxHotTopics:
		return nil, invalid("hot topics must be between 1 and %d; got %d", MaxHotTopics, s.HotTopics)
	case s.Rate < 0:
		return nil, invalid("rate must not be negative; got %g", s.Rate)
	case s.Payload < 0 || s.Payload > MaxPayload:
		return nil, invalid("payload must be between 0 and %d bytes; got %d", MaxPayload, s.Payload)
	case s.Publishers < 0 || s.Publishers > MaxPublishers:
		return nil, invalid("publishers must be between 1 and %d; got %d", MaxPublishers, s.Publishers)
	case s.ConnectConcurrency < 0:
		return nil, invalid("connect concurrency must not be negative; got %d", s.ConnectConcurrency)
	case s.Duration < 0 || s.ConnectTimeout < 0 || s.PublishTimeout < 0 || s.Drain < 0:
		return nil, invalid("durations must not be negative")
	case s.Batch < 0 || s.Batch > MaxBatch:
		return nil, invalid("batch must be between 1 and %d; got %d", MaxBatch, s.Batch)
	case s.PID < 0:
		return nil, invalid("pid must not be negative; got %d", s.PID)
	}

	s.hot = int(float64(s.Subscribers)*s.HotShare + 0.5)
	if s.hot == 0 && s.HotShare > 0 && s.Subscribers > 0 {
		s.hot = 1
	}
	s.hot = min(s.hot, s.Subscribers)
	if s.hot > 0 && s.HotTopics > s.hot {
		return nil, invalid("%d hot topics for %d hot subscribers: every hot topic needs a subscriber", s.HotTopics, s.hot)
	}
	s.hotCount = make([]int, s.HotTopics)
	for i := range s.hot {
		s.hotCount[i%s.HotTopics]++
	}
	s.perTopic = (s.Updates + s.HotTopics - 1) / s.HotTopics
	if bytes := int64(s.hot) * int64(s.perTopic) / 8; bytes > maxSeenBytes {
		return nil, invalid("%d hot subscribers × %d updates each need %d MiB to track; the limit is %d MiB: use fewer updates or hot topics' subscribers",
			s.hot, s.perTopic, bytes>>20, maxSeenBytes>>20)
	}

	u, err := url.Parse(s.Hub)
	if err != nil {
		return nil, invalid("hub URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, invalid("hub URL %q: scheme must be http or https", s.Hub)
	}
	if u.Host == "" {
		return nil, invalid("hub URL %q has no host", s.Hub)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	s.hubURL = u
	s.addr = u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		s.addr = net.JoinHostPort(u.Hostname(), port)
	}

	loop, v4, err := isLoopback(ctx, u.Hostname())
	if !loop && !s.AllowRemote {
		if err != nil {
			return nil, fmt.Errorf("%w: cannot tell whether %q is loopback (%v); pass --allow-remote to load a remote hub", ErrRemoteTarget, u.Hostname(), err)
		}
		return nil, fmt.Errorf("%w: %q is not a loopback address; pass --allow-remote to load a remote hub on purpose", ErrRemoteTarget, u.Hostname())
	}
	s.loopback4 = loop && v4
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// isLoopback reports whether host is, or resolves only to, loopback
// addresses, and whether they are all IPv4.
func isLoopback(ctx context.Context, host string) (loop, v4 bool, err error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback(), ip.To4() != nil, nil
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		// RFC 6761: localhost names always resolve to loopback. Dial by
		// name, so no source-address spreading (it may be ::1).
		return true, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return false, false, err
	}
	if len(addrs) == 0 {
		return false, false, errors.New("no address")
	}
	v4 = true
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return false, false, nil
		}
		v4 = v4 && a.IP.To4() != nil
	}
	return true, v4, nil
}
