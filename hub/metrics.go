package hub

import "time"

// Reasons a subscriber is disconnected, passed to
// Metrics.SubscriberDisconnected.
const (
	// DisconnectSlow: its queue filled up (ErrSlowSubscriber), or its client
	// stopped reading (Subscriber.EndSlow).
	DisconnectSlow = "slow"
	// DisconnectGone: the client went away (Subscriber.Close).
	DisconnectGone = "gone"
	// DisconnectAuth: its token expired (Subscriber.EndExpired).
	DisconnectAuth = "auth"
	// DisconnectShutdown: the hub shut down (ErrHubClosed).
	DisconnectShutdown = "shutdown"
)

// Metrics receives the hub's measurements. The prommetrics package
// implements it on Prometheus. Methods are called from the publish and
// fan-out paths, concurrently, and must be cheap and never block.
type Metrics interface {
	// SubscriberConnected is called when a subscriber is registered.
	SubscriberConnected()
	// SubscriberDisconnected is called once per subscriber when it ends,
	// with one of the Disconnect* reasons.
	SubscriberDisconnected(reason string)
	// Published is called for every update the hub accepted, with the time
	// Publish took (validation and Store.Append).
	Published(latency time.Duration)
	// Delivered is called once per fanned-out update with the number of
	// subscribers it was queued for (0 when none matched).
	Delivered(n int)
	// Replay is called when a subscriber asks to resume: hit is true when
	// its Last-Event-ID was found in the history (or it asked for
	// "earliest"), false when the whole retained history had to be sent.
	Replay(hit bool)
	// QueueDepth observes how many events a subscriber had queued when it
	// drained them: a subscriber close to Config.QueueSize is about to be
	// disconnected as slow.
	QueueDepth(n int)
}

// QueueWaitMetrics is a Metrics that also observes, each time a
// subscriber drains its queue, how long the oldest event drained had
// waited since its fan-out began: the hub's own share of a delivery's
// latency (its writers' lag behind the fan-out), apart from the network's
// and the client's. The hub calls QueueWait when Config.Metrics
// implements it, and reads the clock for it only then.
type QueueWaitMetrics interface {
	Metrics
	QueueWait(d time.Duration)
}

// NopMetrics is a Metrics that records nothing: the hub's default.
type NopMetrics struct{}

func (NopMetrics) SubscriberConnected()          {}
func (NopMetrics) SubscriberDisconnected(string) {}
func (NopMetrics) Published(time.Duration)       {}
func (NopMetrics) Delivered(int)                 {}
func (NopMetrics) Replay(bool)                   {}
func (NopMetrics) QueueDepth(int)                {}

var _ Metrics = NopMetrics{}
