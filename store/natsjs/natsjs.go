// Package natsjs is the hub's cluster store on NATS JetStream: every hub
// node publishes its updates to one stream and consumes every update from
// it, so subscribers on any node get updates published on any node, and a
// subscriber that reconnects to another node resumes with the same ids.
//
// # Layout
//
// One stream (Config.Stream, "SSEKIT" by default) holds the updates, one
// message per update, on the subject
//
//	ssekit.<stream>.u.<h>
//
// where h is the first 128 bits of the SHA-256 of the update's id,
// base64url-encoded (22 characters, all valid in a subject token). The body
// is the update in internal/updatecodec's format: its topics are in the body, not in
// the subject, so topics need no escaping and any string is a topic.
//
// A subject per update id makes the three operations the hub needs single
// server-side lookups, with no second structure to keep in step:
//
//   - Append publishes with the header Nats-Expected-Last-Subject-Sequence: 0,
//     so the stream refuses the message when its id's subject already holds
//     one: an exact, atomic duplicate check that lasts as long as the update
//     is retained (Nats-Msg-Id deduplication only lasts the duplicate window,
//     keeps every id in the server's memory for it, and would refuse an id
//     whose update retention has already dropped). The refusal is
//     hub.ErrDuplicateID.
//   - After, on a replay's first page, asks for the last message on the
//     id's subject (the stream's per-subject index answers without a scan),
//     which gives the id's stream sequence; each page is then one batch
//     read from the next sequence (direct get, which any replica may
//     answer).
//   - Every node reads the whole subject space ssekit.<stream>.u.* in
//     stream-sequence order with one consumer (replaced, from the next
//     sequence, when its NATS node goes: see consumer.go), and calls the
//     Subscribe callbacks with each update.
//
// A KV bucket id→seq was the alternative: it costs a second write per
// publish that can fail on its own, and its own retention to keep in step
// with the stream's. A hash collision between two ids (2^-64 odds at four
// billion retained updates) would refuse the second as a duplicate; After
// checks the id in the body, so it never resumes from the wrong update.
//
// Update.Seq is the stream sequence, the same on every node. Update.Time is
// the publishing node's clock when it appended the update, kept in the
// body (a JetStream acknowledgement carries no timestamp).
//
// # Durability and failures
//
// Append returns after the stream's acknowledgement: the update is stored
// on a quorum of the stream's replicas (Config.Replicas). When the
// connection to NATS is down, Append fails at once with an error wrapping
// hub.ErrStoreUnavailable (the server answers 503 and Retry-After); while
// the stream has no leader (an election after a node died), Append retries
// for up to Config.PublishTimeout. The client reconnects by itself, and
// the consumer resumes after the last sequence it delivered, so a node
// recovers with no gap once NATS is back. Healthy reports whether the
// stream answers, for the hub's readiness.
//
// AppendBatch is one JetStream atomic batch (ADR-50, nats-server 2.12 or
// later; Open sets the stream's AllowAtomicPublish, so a stream made
// before is updated in place): all of a batch is stored, at consecutive
// sequences, or none, and the same expected-last-subject-sequence check
// refuses a batch with a retained id as a whole. JetStream commits at most
// 1,000 messages per atomic batch by default (Config.MaxBatch): a longer
// batch is refused, never split.
//
// Retention is the stream's own: Config.HistorySize (max messages),
// MaxBytes and MaxAge, oldest dropped first.
package natsjs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/internal/fanout"
	"github.com/ssekit/sse/internal/updatecodec"
)

// Defaults for the zero Config fields.
const (
	// DefaultStream is the stream name when Config.Stream is empty.
	DefaultStream = "SSEKIT"
	// DefaultHistorySize is the number of updates kept when
	// Config.HistorySize is zero.
	DefaultHistorySize = 10_000
	// DefaultPublishTimeout bounds an Append (including its retries while
	// the stream elects a leader) when Config.PublishTimeout is zero.
	DefaultPublishTimeout = 5 * time.Second
	// DefaultMaxBatch is Config.MaxBatch when zero: the NATS server's
	// default max_batch_size, the most messages of one atomic batch.
	DefaultMaxBatch = 1000
	// DefaultMaxBatchesInFlight is Config.MaxBatchesInFlight when zero:
	// three hub nodes at this stay under the server's 50 open atomic
	// batches per stream.
	DefaultMaxBatchesInFlight = 16
	// DefaultOpenTimeout is how long Open keeps trying to reach NATS and
	// create the stream when Config.OpenTimeout is zero.
	DefaultOpenTimeout = 30 * time.Second
)

// Errors returned by the store besides those of package hub. Errors wrap
// in one order: "natsjs: <operation>: <sentinel>: <cause>".
var (
	// ErrInvalidConfig is returned by Open for a Config it cannot use
	// (wrapped with the reason).
	ErrInvalidConfig = errors.New("natsjs: invalid config")
)

// Config configures a Store. The zero value connects to
// nats://127.0.0.1:4222 and keeps the newest 10,000 updates in the stream
// SSEKIT with one replica.
type Config struct {
	// URL is the NATS server, or a comma-separated list of the cluster's
	// servers (nats://host1:4222,nats://host2:4222): the client connects
	// to one and moves to another when it fails. Empty means
	// nats.DefaultURL (nats://127.0.0.1:4222).
	URL string

	// Stream is the JetStream stream's name (letters, digits, - and _).
	// Its subjects are ssekit.<Stream>.u.*, so hubs with different stream
	// names share a NATS cluster without seeing each other's updates.
	// Empty means DefaultStream.
	Stream string

	// Replicas is the stream's replica count (1 to 5; 3 in a 3-node
	// cluster keeps every acknowledged update through the loss of one
	// node). Zero means 1.
	Replicas int

	// HistorySize is the most updates retained (the stream's max
	// messages). Zero means DefaultHistorySize; a negative value means no
	// limit by count.
	HistorySize int
	// MaxBytes bounds the stream's size in bytes. Zero means no limit.
	MaxBytes int64
	// MaxAge is how long an update is retained. Zero means no limit.
	MaxAge time.Duration

	// PublishTimeout bounds an Append that has no earlier deadline in its
	// context. Zero means DefaultPublishTimeout.
	PublishTimeout time.Duration
	// OpenTimeout is how long Open keeps trying to connect and create the
	// stream (a cluster starting up has no JetStream quorum for a few
	// seconds). Zero means DefaultOpenTimeout.
	OpenTimeout time.Duration

	// MaxBatch is the most updates AppendBatch stores as one atomic
	// batch; a longer batch is refused (it would not be all-or-nothing).
	// It must not exceed the NATS server's jetstream max_batch_size
	// (1,000 by default). Zero means DefaultMaxBatch.
	MaxBatch int
	// MaxBatchesInFlight bounds this store's atomic batches open on the
	// stream at once (the server refuses more than 50 per stream, from
	// every hub node together); more wait. Zero means
	// DefaultMaxBatchesInFlight.
	MaxBatchesInFlight int

	// Name is the client connection's name, shown by the NATS server's
	// monitoring. Empty means "ssekit".
	Name string
	// Options are more NATS client options (credentials, TLS, …), applied
	// after the store's own.
	Options []nats.Option

	// Logger receives connection and consumer events. Nil means none.
	Logger *slog.Logger
}

// Store is a hub.Store on a NATS JetStream stream. It is safe for
// concurrent use.
type Store struct {
	cfg    Config
	stream string
	prefix string // "ssekit.<stream>.u."
	nc     *nats.Conn
	js     jetstream.JetStream
	log    *slog.Logger

	// The consumer feeding the callbacks (consumer.go): cmu guards
	// consumer, consumerName and lost; gen counts the consumers, written
	// with dmu and cmu held.
	cmu          sync.Mutex
	consumer     jetstream.ConsumeContext
	consumerName string
	lost         error // why the current consumer must be replaced
	gen          atomic.Uint64
	replace      chan struct{} // tells the consumer loop to look at lost
	closing      chan struct{} // closed by Close
	loopDone     chan struct{} // closed when the consumer loop returns

	// appended is the highest Seq this store's Appends were acknowledged
	// with: After reads at least that far (read-your-writes, even from a
	// replica that lags).
	appended atomic.Uint64

	// dmu serialises delivery, which holds it while a callback runs (and
	// may block). A Subscribe registers under it, so a callback starts
	// exactly after an update delivery.
	dmu sync.Mutex
	// delivered is the last Seq given to the callbacks: written with dmu
	// held, read without it (After must not wait for a blocked callback).
	delivered atomic.Uint64

	// mu guards closed, and orders a Subscribe with Close.
	mu       sync.Mutex
	closed   bool
	isClosed atomic.Bool
	// subs are the Subscribe callbacks delivery calls.
	subs fanout.List

	// ret applies per-topic retention rules (SetRetention).
	ret retention

	// batchSlots bounds the atomic batches open at once (AppendBatch).
	batchSlots chan struct{}
}

// Open connects to NATS, creates the stream (or updates its limits to
// cfg's), and starts consuming it. It retries for up to cfg.OpenTimeout
// while NATS or its JetStream quorum is not there yet, or until ctx ends.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.Stream != strings.Map(streamNameRune, cfg.Stream) {
		return nil, fmt.Errorf("%w: stream name %q: use letters, digits, - and _", ErrInvalidConfig, cfg.Stream)
	}
	switch {
	case cfg.Replicas == 0:
		cfg.Replicas = 1
	case cfg.Replicas < 0 || cfg.Replicas > 5:
		return nil, fmt.Errorf("%w: %d replicas: use 1 to 5", ErrInvalidConfig, cfg.Replicas)
	}
	if cfg.MaxBytes < 0 || cfg.MaxAge < 0 {
		return nil, fmt.Errorf("%w: negative MaxBytes or MaxAge", ErrInvalidConfig)
	}
	if cfg.HistorySize == 0 {
		cfg.HistorySize = DefaultHistorySize
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.MaxBatch < 0 || cfg.MaxBatchesInFlight < 0 {
		return nil, fmt.Errorf("%w: negative MaxBatch or MaxBatchesInFlight", ErrInvalidConfig)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxBatchesInFlight == 0 {
		cfg.MaxBatchesInFlight = DefaultMaxBatchesInFlight
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = DefaultOpenTimeout
	}
	if cfg.URL == "" {
		cfg.URL = nats.DefaultURL
	}
	if cfg.Name == "" {
		cfg.Name = "ssekit"
	}
	s := &Store{
		cfg:    cfg,
		stream: cfg.Stream,
		prefix: "ssekit." + cfg.Stream + ".u.",
		log:    cfg.Logger,

		batchSlots: make(chan struct{}, cfg.MaxBatchesInFlight),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.OpenTimeout)
	defer cancel()
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// Publishes fail at once while disconnected instead of waiting in
		// a buffer for a server that may not come back in time.
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.log.Warn("natsjs: disconnected from NATS", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Info("natsjs: reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
	}
	nc, err := nats.Connect(cfg.URL, append(opts, cfg.Options...)...)
	if err != nil {
		return nil, fmt.Errorf("natsjs: connect %s: %w", cfg.URL, err)
	}
	s.nc = nc
	if s.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsjs: %w", err)
	}
	last, err := s.createStream(ctx)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.delivered.Store(last)
	if err := s.startConsumer(ctx, last+1); err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

func streamNameRune(r rune) rune {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		return r
	}
	return -1
}

// streamConfig is the stream the store needs.
func (s *Store) streamConfig() jetstream.StreamConfig {
	maxMsgs := int64(s.cfg.HistorySize)
	if maxMsgs < 0 {
		maxMsgs = -1
	}
	maxBytes := s.cfg.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        s.stream,
		Description: "ssekit hub updates",
		Subjects:    []string{s.prefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     maxMsgs,
		MaxBytes:    maxBytes,
		MaxAge:      s.cfg.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		AllowDirect: true,
		// AppendBatch's atomic batches (nats-server 2.12 or later).
		AllowAtomicPublish: true,
	}
}

// createStream creates or updates the stream, retrying until ctx ends
// while NATS is unreachable or JetStream has no quorum yet, and returns
// its last sequence.
func (s *Store) createStream(ctx context.Context) (uint64, error) {
	cfg := s.streamConfig()
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := s.js.CreateOrUpdateStream(actx, cfg)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = st.Info(actx)
		}
		cancel()
		if err == nil && !info.Config.AllowAtomicPublish {
			// A server before 2.12 drops the setting it does not know.
			return 0, fmt.Errorf("natsjs: stream %s: the NATS server did not enable atomic batch publish (allow_atomic), which batches need: use nats-server 2.12 or later", s.stream)
		}
		if err == nil {
			return info.State.LastSeq, nil
		}
		if !streamNotReadyYet(err) {
			return 0, fmt.Errorf("natsjs: stream %s: %w", s.stream, err) // a refusal, not an outage
		}
		s.log.Debug("natsjs: stream not ready, retrying", "stream", s.stream, "err", err)
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("natsjs: stream %s not ready: %w: %w", s.stream, hub.ErrStoreUnavailable, err)
		case <-time.After(wait):
		}
	}
}

// errCodeNoPeers is JetStream's "no suitable peers for placement"
// (10005), which the nats.go client does not name.
const errCodeNoPeers jetstream.ErrorCode = 10005

// streamNotReadyYet reports whether a failed stream creation may succeed
// if tried again: NATS unreachable, JetStream without quorum (503, 408,
// 500), a forming cluster whose meta leader does not yet know enough
// peers to place the replicas (10005, a 400), another hub of the
// cluster creating the same stream at the same moment (10058), or "stream
// not found" (10059) from a create-or-update (the stream another hub's
// request has just assigned, not yet running on the server that answers
// the update or the info that follows it: seen to make a fresh
// three-node --cluster hub exit once in 28 starts). Anything else is a
// refusal a retry cannot change.
func streamNotReadyYet(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return true
	}
	switch apiErr.Code {
	case 503, 408, 500:
		return true
	}
	switch apiErr.ErrorCode {
	case errCodeNoPeers, jetstream.JSErrCodeStreamNameInUse, jetstream.JSErrCodeStreamNotFound:
		return true
	}
	return false
}

// publishRetryWait is the pause between publishes while the stream has no
// leader to acknowledge them (NATS answers "no responders").
const publishRetryWait = 50 * time.Millisecond

// subject is the subject of the update with the given id.
func (s *Store) subject(id string) string {
	sum := sha256.Sum256([]byte(id))
	var h [22]byte // base64 of 16 bytes, unpadded
	base64.RawURLEncoding.Encode(h[:], sum[:16])
	var b strings.Builder // one allocation: the subject
	b.Grow(len(s.prefix) + len(h))
	b.WriteString(s.prefix)
	b.Write(h[:])
	return b.String()
}

// Append publishes u to the stream and returns after the stream
// acknowledged it (stored on a quorum of replicas); it sets u.Seq (the
// stream sequence) and u.Time. Errors: hub.ErrDuplicateID when the id is
// retained, an error wrapping hub.ErrStoreUnavailable when NATS cannot be
// reached (at once when disconnected), hub.ErrStoreClosed, ctx's error.
// When it fails for lack of an acknowledgement the update may or may not
// be stored: a retry with the same id then answers ErrDuplicateID.
func (s *Store) Append(ctx context.Context, u *hub.Update) error {
	if u.ID == "" {
		return hub.ErrNoID
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	c := *u
	c.Time = time.Now()
	msg := &nats.Msg{
		Subject: s.subject(u.ID),
		Header:  appendHeader,
		Data:    updatecodec.Append(make([]byte, 0, updatecodec.EncodedSize(&c)), &c),
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	seq, err := s.publish(pctx, msg)
	if err != nil {
		return s.publishError(ctx, err)
	}
	u.Seq, u.Time = seq, c.Time
	s.noteAppended(seq)
	return nil
}

// appendHeader is every Append's header: its id's subject must be empty.
// One map for all: nothing writes it (nats.go only encodes a request's
// header).
var appendHeader = nats.Header{jetstream.ExpectedLastSubjSeqHeader: {"0"}}

// publish sends msg to the stream and returns the sequence the stream's
// acknowledgement gives it, sending it again while no stream leader
// answers (no responders: an election) until ctx ends.
func (s *Store) publish(ctx context.Context, msg *nats.Msg) (uint64, error) {
	for {
		resp, err := s.nc.RequestMsgWithContext(ctx, msg)
		if errors.Is(err, nats.ErrNoResponders) {
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("%w: %w", err, ctx.Err())
			case <-time.After(publishRetryWait):
				continue
			}
		}
		if err != nil {
			return 0, err
		}
		return parseAck(resp.Data)
	}
}

// parseAck returns the sequence of a publish acknowledgement,
// {"stream":"S","seq":N…}, read without encoding/json (whose Unmarshal
// was half the client's CPU of an Append); an error response, or
// anything else, goes through encoding/json.
func parseAck(data []byte) (uint64, error) {
	const prefix, field = `{"stream":"`, `","seq":`
	if bytes.HasPrefix(data, []byte(prefix)) && !bytes.Contains(data, []byte(`"error"`)) {
		if i := bytes.Index(data, []byte(field)); i >= len(prefix) && bytes.IndexByte(data[len(prefix):i], '"') < 0 {
			var seq uint64
			j := i + len(field)
			k := j
			for ; k < len(data) && data[k] >= '0' && data[k] <= '9' && k-j < 19; k++ {
				seq = seq*10 + uint64(data[k]-'0')
			}
			if k > j && k < len(data) && (data[k] == ',' || data[k] == '}') && seq > 0 {
				return seq, nil
			}
		}
	}
	var ack struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
		Seq    uint64              `json:"seq"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return 0, fmt.Errorf("natsjs: publish acknowledgement: %w", err)
	}
	switch {
	case ack.Error != nil:
		return 0, ack.Error
	case ack.Stream == "" || ack.Seq == 0:
		return 0, fmt.Errorf("natsjs: publish acknowledgement without a sequence: %.100q", data)
	}
	return ack.Seq, nil
}

// ready says why an append cannot start now: the store closed, ctx ended,
// NATS disconnected (fail fast rather than queue).
func (s *Store) ready(ctx context.Context) error {
	if s.isClosed.Load() {
		return hub.ErrStoreClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if st := s.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("natsjs: %w: not connected to NATS (%s)", hub.ErrStoreUnavailable, st)
	}
	return nil
}

// AppendBatch appends us as one JetStream atomic batch (ADR-50, the
// stream's AllowAtomicPublish): the stream stores all of them, at
// consecutive sequences, or none (see hub.BatchAppender). Each message
// carries the same Nats-Expected-Last-Subject-Sequence: 0 as Append's, so
// an id already retained makes the server refuse the whole batch; the
// error then names the first such update (looked up only on that path).
//
// The updates before the last are published without a reply subject (the
// server stages them and answers nothing), the last one commits the batch
// and is the one request: a batch costs one round trip and one
// acknowledgement. A batch the server abandoned (a leader change or a
// dropped connection mid-batch: "batch is incomplete"), or refused for
// having too many batches open on the stream, stored nothing and is sent
// again under a new batch id until Config.PublishTimeout; a lost commit
// acknowledgement is, as for Append, an ErrStoreUnavailable after which
// the batch may or may not be stored.
//
// A batch longer than Config.MaxBatch (JetStream's limit on one atomic
// batch, 1,000 by default) is refused with an error wrapping
// hub.ErrInvalidUpdate before anything is sent: splitting it would not be
// all-or-nothing. At most Config.MaxBatchesInFlight batches of this store
// are open on the stream at once (the server allows 50 per stream).
func (s *Store) AppendBatch(ctx context.Context, us []*hub.Update) error {
	if len(us) == 0 {
		return nil
	}
	if err := hub.CheckBatchIDs(us); err != nil {
		return err
	}
	if len(us) > s.cfg.MaxBatch {
		return fmt.Errorf("natsjs: %w: a batch of %d updates: JetStream stores at most %d updates atomically (the NATS server's max_batch_size); send smaller batches", hub.ErrInvalidUpdate, len(us), s.cfg.MaxBatch)
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	select {
	case s.batchSlots <- struct{}{}:
		defer func() { <-s.batchSlots }()
	case <-pctx.Done():
		return s.publishError(ctx, pctx.Err())
	}
	now := time.Now()
	size := 0
	for _, u := range us {
		c := *u
		c.Time = now
		size += updatecodec.EncodedSize(&c)
	}
	// One buffer for every body: the client copies each into its
	// outgoing buffer as it publishes.
	buf := make([]byte, 0, size)
	msgs := make([]nats.Msg, len(us))
	for i, u := range us {
		c := *u
		c.Time = now
		off := len(buf)
		buf = updatecodec.Append(buf, &c)
		msgs[i] = nats.Msg{Subject: s.subject(u.ID), Data: buf[off:len(buf):len(buf)]}
		if limit := s.nc.MaxPayload(); int64(len(msgs[i].Data))+batchHeaderBytes > limit {
			return &hub.BatchError{Index: i, Err: fmt.Errorf("natsjs: %w: update of %d bytes over the NATS server's max_payload (%d)", hub.ErrInvalidUpdate, len(msgs[i].Data), limit)}
		}
	}
	for wait := publishRetryWait; ; wait = min(2*wait, 500*time.Millisecond) {
		last, err := s.publishBatch(pctx, msgs)
		if err == nil {
			first := last - uint64(len(us)) + 1
			for i, u := range us {
				u.Seq, u.Time = first+uint64(i), now
			}
			s.noteAppended(last)
			return nil
		}
		if !batchRetryable(err) {
			return s.batchError(ctx, us, err)
		}
		s.log.Debug("natsjs: batch not stored, sending it again", "updates", len(us), "err", err)
		select {
		case <-pctx.Done():
			return s.publishError(ctx, fmt.Errorf("%w (last try: %w)", pctx.Err(), err))
		case <-time.After(wait):
		}
		if err := s.ready(ctx); err != nil {
			return err
		}
	}
}

// Headers of an atomic batch's messages (ADR-50).
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
	// batchHeaderBytes bounds the encoded headers of a batch message.
	batchHeaderBytes = 160
)

// JetStream's error codes for atomic batches that nats.go does not name.
const (
	errCodeBatchIncomplete jetstream.ErrorCode = 10176
	errCodeBatchDisabled   jetstream.ErrorCode = 10174
	errCodeBatchTooLarge   jetstream.ErrorCode = 10199
	errCodeBatchInflight   jetstream.ErrorCode = 10210
)

// publishBatch sends msgs as one atomic batch under a new id and returns
// the stream sequence of the last (the batch's are consecutive). One
// header map serves every message: PublishMsg encodes it before
// returning, so it is rewritten for the next.
func (s *Store) publishBatch(ctx context.Context, msgs []nats.Msg) (last uint64, err error) {
	id := nuid.Next()
	hdr := nats.Header{
		jetstream.ExpectedLastSubjSeqHeader: {"0"},
		batchIDHeader:                       {id},
		batchSeqHeader:                      {""},
	}
	var seq [20]byte
	n := len(msgs)
	for i := range msgs[:n-1] {
		m := &msgs[i]
		hdr[batchSeqHeader][0] = string(strconv.AppendInt(seq[:0], int64(i+1), 10))
		m.Header = hdr
		err := s.nc.PublishMsg(m)
		m.Header = nil
		if err != nil {
			return 0, err
		}
	}
	commit := msgs[n-1]
	commit.Header = nats.Header{
		jetstream.ExpectedLastSubjSeqHeader: {"0"},
		batchIDHeader:                       {id},
		batchSeqHeader:                      {strconv.Itoa(n)},
		batchCommitHeader:                   {"1"},
	}
	resp, err := s.nc.RequestMsgWithContext(ctx, &commit)
	if err != nil {
		return 0, err
	}
	var ack struct {
		Error *jetstream.APIError `json:"error"`
		Seq   uint64              `json:"seq"`
		Batch string              `json:"batch"`
		Count int                 `json:"count"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("natsjs: batch acknowledgement: %w", err)
	}
	switch {
	case ack.Error != nil:
		return 0, ack.Error
	case ack.Batch != id || ack.Count != n || ack.Seq < uint64(n):
		return 0, fmt.Errorf("natsjs: batch acknowledgement for %q, %d updates at %d: want %q, %d", ack.Batch, ack.Count, ack.Seq, id, n)
	}
	return ack.Seq, nil
}

// batchRetryable reports whether a batch refused with err stored nothing
// and may be stored if sent again: abandoned mid-batch, too many batches
// open on the stream, no stream leader to answer.
func batchRetryable(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == errCodeBatchIncomplete || apiErr.ErrorCode == errCodeBatchInflight || apiErr.Code == 503
	}
	return errors.Is(err, nats.ErrNoResponders)
}

// batchError maps the failed publish of a batch to the store's errors:
// an id already retained as a *hub.BatchError naming its update.
func (s *Store) batchError(ctx context.Context, us []*hub.Update, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return s.takenError(ctx, us)
		case errCodeBatchTooLarge:
			return fmt.Errorf("natsjs: %w: a batch of %d updates: %w; lower natsjs.Config.MaxBatch to the NATS server's max_batch_size", hub.ErrInvalidUpdate, len(us), err)
		case errCodeBatchDisabled:
			return fmt.Errorf("natsjs: stream %s: %w: %w (the stream was changed since Open; restart the hub to set allow_atomic again)", s.stream, hub.ErrStoreUnavailable, err)
		}
	}
	return s.publishError(ctx, err)
}

// takenError names the first update of a refused batch whose id is
// retained. The ids are looked up in parallel, only on this path.
func (s *Store) takenError(ctx context.Context, us []*hub.Update) error {
	taken := make([]bool, len(us))
	errs := make([]error, len(us))
	sem := make(chan struct{}, batchLookups)
	var wg sync.WaitGroup
	for i, u := range us {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			seq, err := s.lookup(ctx, u.ID)
			taken[i], errs[i] = seq > 0, err
		})
	}
	wg.Wait()
	for i := range us {
		switch {
		case taken[i]:
			return &hub.BatchError{Index: i, Err: hub.ErrDuplicateID}
		case errs[i] != nil:
			return errs[i]
		}
	}
	// Taken and freed again by retention in between: still a refusal.
	return &hub.BatchError{Index: 0, Err: hub.ErrDuplicateID}
}

// batchLookups is how many id lookups takenError has in flight at once.
const batchLookups = 8

// noteAppended raises s.appended to seq.
func (s *Store) noteAppended(seq uint64) {
	for {
		old := s.appended.Load()
		if old >= seq || s.appended.CompareAndSwap(old, seq) {
			return
		}
	}
}

// publishError maps a failed publish to the store's errors.
func (s *Store) publishError(ctx context.Context, err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
		return hub.ErrDuplicateID
	case ctx.Err() != nil: // the caller gave up: its error, not ours
		return ctx.Err()
	case s.isClosed.Load(), errors.Is(err, nats.ErrConnectionClosed):
		return hub.ErrStoreClosed
	case errors.As(err, &apiErr) && apiErr.Code != 503 && apiErr.Code != 408:
		return fmt.Errorf("natsjs: publish: %w", err) // refused, e.g. too large
	}
	return fmt.Errorf("natsjs: publish: %w: %w", hub.ErrStoreUnavailable, err)
}

// After returns the page of retained updates after from (see hub.Store).
// On the first page it finds from.ID's sequence with one lookup on the
// id's subject; then it reads one batch (direct get, at most maxBytes) from
// the next sequence. The replay reaches the end no earlier than the last
// update this store appended or delivered, so a replica that lags is
// waited for.
func (s *Store) After(ctx context.Context, from hub.Cursor, maxBytes int) (hub.Page, error) {
	if s.isClosed.Load() {
		return hub.Page{}, hub.ErrStoreClosed
	}
	need := max(s.delivered.Load(), s.appended.Load())
	p := hub.Page{Next: from.Seq}
	if from.Seq == 0 {
		p.Found = from.ID == ""
		if from.ID != "" {
			seq, err := s.lookup(ctx, from.ID)
			if err != nil {
				return hub.Page{}, err
			}
			if seq > 0 {
				p.Found, p.Anchor, p.Next = true, seq, seq
			}
		}
	}
	if err := s.readPage(ctx, &p, need, maxBytes); err != nil {
		return hub.Page{}, err
	}
	return p, nil
}

// lookup returns the stream sequence of the update with the given id, or 0
// when it is not retained. A replica may answer the direct get and lag:
// "not found" is confirmed by the stream leader.
func (s *Store) lookup(ctx context.Context, id string) (uint64, error) {
	subj := s.subject(id)
	rctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	resp, err := s.nc.RequestWithContext(rctx, "$JS.API.DIRECT.GET."+s.stream+"."+subj, nil)
	if err != nil {
		return 0, s.readError(ctx, err)
	}
	if resp.Header.Get("Status") == "" {
		seq, _ := strconv.ParseUint(resp.Header.Get(jetstream.SequenceHeader), 10, 64)
		if u, err := updatecodec.Decode(resp.Data, seq); err == nil && u.ID == id && seq > 0 {
			return seq, nil
		}
		return 0, nil // another id with the same hash
	}
	if st := resp.Header.Get("Status"); st != "404" {
		return 0, fmt.Errorf("natsjs: direct get: %w: status %s %s", hub.ErrStoreUnavailable, st, resp.Header.Get("Description"))
	}
	// Ask the leader, which has every acknowledged update.
	req, _ := json.Marshal(map[string]string{"last_by_subj": subj})
	resp, err = s.nc.RequestWithContext(rctx, "$JS.API.STREAM.MSG.GET."+s.stream, req)
	if err != nil {
		return 0, s.readError(ctx, err)
	}
	var r struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return 0, fmt.Errorf("natsjs: message get: %w", err)
	}
	switch {
	case r.Error != nil && r.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return 0, nil
	case r.Error != nil:
		return 0, fmt.Errorf("natsjs: message get: %w: %w", hub.ErrStoreUnavailable, r.Error)
	case r.Message == nil:
		return 0, nil
	}
	if u, err := updatecodec.Decode(r.Message.Data, r.Message.Seq); err == nil && u.ID == id {
		return r.Message.Seq, nil
	}
	return 0, nil
}

// readBatch is the most messages one direct get returns.
const readBatch = 256

// readPage reads the page after p.Next into p: one direct batch get of at
// most maxBytes, the updates that fit maxBytes by hub.UpdateSize (the rest
// are read again with the next page), and p.End when the stream has nothing
// after them and they reach need.
//
// The batch asks for the bodies alone (no_hdr): with headers, the server
// builds and the client parses into a map six headers per message (stream,
// subject, sequence, time, pending count, previous sequence), most of a
// replay's cost. A message's sequence then comes from the batch's end
// (204 EOB), whose Nats-Last-Sequence is the last message's: n messages
// asked from seq and ending at seq+n-1 are seq, seq+1, … with no gap. A
// batch with a gap (retention dropped the updates after an unknown id, or
// messages were deleted) is asked again with headers, which carry each
// sequence; a server that ignores no_hdr sends them anyway. One server
// answers a whole batch, so this holds whichever replica answers.
func (s *Store) readPage(ctx context.Context, p *hub.Page, need uint64, maxBytes int) error {
	ch := make(chan *nats.Msg, readBatch+1) // one batch and its end
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return s.readError(ctx, err)
	}
	defer sub.Unsubscribe()
	subject := "$JS.API.DIRECT.GET." + s.stream
	var req []byte
	ask := func(from uint64, headers bool) error {
		// At least the largest message NATS takes, so that one always
		// fits: a page holds at least one update however large.
		req = fmt.Appendf(req[:0], `{"seq":%d,"batch":%d,"max_bytes":%d,"no_hdr":%t}`, from, readBatch, max(int64(maxBytes), s.nc.MaxPayload()), !headers)
		if err := s.nc.PublishRequest(subject, inbox, req); err != nil {
			return s.readError(ctx, err)
		}
		return nil
	}
	deadline := time.Now().Add(s.cfg.PublishTimeout)
	seq := p.Next + 1
	headers := false // the batch asked for carries headers
	if err := ask(seq, headers); err != nil {
		return err
	}
	for lagging := 1; ; {
		msgs, last, more, err := s.readBatch(ctx, ch, make([]*nats.Msg, 0, 16))
		if err != nil {
			return err
		}
		if len(msgs) > 0 && msgs[0].Header.Get(jetstream.SequenceHeader) == "" && last != seq+uint64(len(msgs))-1 {
			if headers {
				return fmt.Errorf("natsjs: direct get: batch from %d without sequences", seq)
			}
			headers = true // a gap: ask again for the sequences
			if err := ask(seq, headers); err != nil {
				return err
			}
			continue
		}
		cut, err := s.fill(p, msgs, seq, maxBytes)
		if err != nil || cut || more {
			return err // p.End stays false: more to read
		}
		if p.Next >= need { // the end, and no earlier than this store has seen
			p.End = true
			return nil
		}
		// The end came before need: either retention dropped the updates
		// up to need, or a replica that lags answered. The leader knows.
		if st, err := s.state(ctx); err != nil {
			return err
		} else if st.Msgs == 0 || st.LastSeq <= p.Next {
			p.End = true // nothing left after p.Next
			return nil
		}
		if len(p.Updates) > 0 {
			return nil // a page to replay now; the next one waits for the replica
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("natsjs: %w: replica behind: read to %d, want %d", hub.ErrStoreUnavailable, p.Next, need)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(lagging) * time.Millisecond):
		}
		lagging = min(2*lagging, 50)
		seq, headers = p.Next+1, false
		if err := ask(seq, headers); err != nil {
			return err
		}
	}
}

// fill decodes msgs, one batch asked from seq, into p while they fit
// maxBytes, advancing p.Next past each. A message's sequence is its
// Nats-Sequence header or, without headers, the next after the previous
// message's (readPage checked that the batch has no gap). cut reports that
// the page filled up before the batch's end.
func (s *Store) fill(p *hub.Page, msgs []*nats.Msg, seq uint64, maxBytes int) (cut bool, err error) {
	used := 0
	for _, u := range p.Updates {
		used += hub.UpdateSize(u)
	}
	now := time.Now()
	for _, m := range msgs {
		n := seq
		if h := m.Header.Get(jetstream.SequenceHeader); h != "" {
			var err error
			n, err = strconv.ParseUint(h, 10, 64)
			if err != nil || n < seq {
				return false, fmt.Errorf("natsjs: direct get: sequence %q after %d", h, seq)
			}
		}
		seq = n + 1
		u, err := updatecodec.Decode(m.Data, n)
		if err != nil {
			s.log.Error("natsjs: undecodable update; skipped", "seq", n, "err", err)
			p.Next = n
			continue
		}
		if s.expiredByRule(u, now) {
			p.Next = n
			continue
		}
		size := hub.UpdateSize(u)
		if hub.PageFull(len(p.Updates), used, size, maxBytes) {
			return true, nil
		}
		used += size
		p.Updates = append(p.Updates, u)
		p.Next = n
	}
	return false, nil
}

// state asks the stream's leader for the stream's state.
func (s *Store) state(ctx context.Context) (jetstream.StreamState, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	st, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return jetstream.StreamState{}, s.readError(ctx, err)
	}
	return st.CachedInfo().State, nil
}

// readBatch collects the messages answering one direct batch get into
// msgs, up to its end (204), whose last sequence it returns as last. msgs
// comes back empty when the stream has nothing at or after the asked
// sequence (404). more reports that the server has messages after the
// batch.
func (s *Store) readBatch(ctx context.Context, ch <-chan *nats.Msg, msgs []*nats.Msg) (_ []*nats.Msg, last uint64, more bool, err error) {
	timer := time.NewTimer(s.cfg.PublishTimeout)
	defer timer.Stop()
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return msgs, 0, false, ctx.Err()
		case <-timer.C:
			return msgs, 0, false, fmt.Errorf("natsjs: direct get: %w: timed out", hub.ErrStoreUnavailable)
		}
		if m.Header == nil { // a body alone: no_hdr
			msgs = append(msgs, m)
			continue
		}
		switch st := m.Header.Get("Status"); st {
		case "":
			msgs = append(msgs, m)
		case "404": // nothing at or after the sequence
			return msgs[:0], 0, false, nil
		case "204": // end of batch
			last, err := strconv.ParseUint(m.Header.Get(jetstream.LastSequenceHeader), 10, 64)
			if err != nil {
				return msgs, 0, false, fmt.Errorf("natsjs: direct get: end of batch without last sequence: %w", err)
			}
			// With no_hdr the server does not count down its pending
			// count: it may say more when there is none, which costs one
			// more request (answered 404), never a missed update.
			pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return msgs, last, pending > 0, nil
		case "503":
			return msgs, 0, false, fmt.Errorf("natsjs: direct get: %w: no responders", hub.ErrStoreUnavailable)
		default:
			return msgs, 0, false, fmt.Errorf("natsjs: direct get: status %s %s", st, m.Header.Get("Description"))
		}
	}
}

// readError maps a failed read request to the store's errors.
func (s *Store) readError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case s.isClosed.Load():
		return hub.ErrStoreClosed
	}
	return fmt.Errorf("natsjs: %w: %w", hub.ErrStoreUnavailable, err)
}

// Subscribe calls fn with every update appended from now on by any node,
// in Seq order, from the store's one delivery goroutine. fn may block: it
// holds back later deliveries (to every callback, and so the consumer's
// pulls), never Append or After. fn must not call stop. stop is idempotent;
// after it returns fn is not called again. ctx bounds asking the stream's
// leader where "now" is.
func (s *Store) Subscribe(ctx context.Context, fn func(*hub.Update)) (stop func(), err error) {
	if s.isClosed.Load() {
		return nil, hub.ErrStoreClosed
	}
	// "From now on": after the stream's last sequence at this moment, as
	// the leader knows it; without NATS, after what this node has seen.
	st, _ := s.state(ctx)
	last := st.LastSeq
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, hub.ErrStoreClosed
	}
	return s.subs.Add(fn, max(last, s.delivered.Load(), s.appended.Load())+1), nil
}

// Healthy reports whether the stream answers: nil when this node is
// connected to NATS and the stream's leader replies, an error wrapping
// hub.ErrStoreUnavailable otherwise.
func (s *Store) Healthy(ctx context.Context) error {
	if s.isClosed.Load() {
		return hub.ErrStoreClosed
	}
	if st := s.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("natsjs: %w: not connected to NATS (%s)", hub.ErrStoreUnavailable, st)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.js.Stream(ctx, s.stream); err != nil {
		return fmt.Errorf("natsjs: stream %s: %w: %w", s.stream, hub.ErrStoreUnavailable, err)
	}
	return nil
}

// Close stops consuming and closes the connection; updates already
// acknowledged are in the stream, and nothing is buffered, so ctx is
// unused but for the wait for the consumer's goroutine. It returns
// hub.ErrStoreClosed when called again.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return hub.ErrStoreClosed
	}
	s.closed = true
	s.isClosed.Store(true)
	s.subs.Clear()
	s.mu.Unlock()
	close(s.closing)
	s.stopConsumer()
	s.stopRetention()
	// The loop ends at once, unless it waits for a delivery a callback
	// holds up (and dmu with it): then no longer than ctx.
	select {
	case <-s.loopDone:
	case <-ctx.Done():
	}
	s.nc.Close()
	return nil
}

var (
	_ hub.Store         = (*Store)(nil)
	_ hub.HealthChecker = (*Store)(nil)
	_ hub.BatchAppender = (*Store)(nil)
)

// JetStream is the store's JetStream context, for what else a hub keeps
// on the same NATS (its certificates: internal/certnats). It lives as long
// as the store.
func (s *Store) JetStream() jetstream.JetStream { return s.js }
