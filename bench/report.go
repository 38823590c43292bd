package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Report is what a run measured. Its JSON form (WriteJSON) is one object
// with these snake_case keys; keys may be added, none change meaning.
type Report struct {
	Hub            string  `json:"hub"`
	Draft          string  `json:"draft"` // the Mercure draft subscribed with: "07" (topic=) or "08" (match=)
	RunID          string  `json:"run_id"`
	Subscribers    int     `json:"subscribers"`
	HotSubscribers int     `json:"hot_subscribers"`
	HotTopics      int     `json:"hot_topics"`
	Updates        int     `json:"updates"`
	Rate           float64 `json:"rate"` // updates per second; 0: unlimited
	Payload        int     `json:"payload_bytes"`
	Publishers     int     `json:"publishers"`
	Batch          int     `json:"batch"` // updates per publish request

	// Connected subscribers got their response headers; the others failed
	// (FirstConnectError says why). ConnectLatency is dial to headers.
	Connected         int     `json:"connected"`
	ConnectErrors     int     `json:"connect_errors"`
	FirstConnectError string  `json:"first_connect_error,omitempty"`
	ConnectSeconds    float64 `json:"connect_seconds"`
	ConnectLatency    Latency `json:"connect_ms"`

	// Published updates got a 200. PublishSeconds runs from the first
	// publish to the last answer; PublishLatency is one request's round
	// trip.
	Published         int     `json:"published"`
	PublishErrors     int     `json:"publish_errors"`
	FirstPublishError string  `json:"first_publish_error,omitempty"`
	PublishSeconds    float64 `json:"publish_seconds"`
	PublishRate       float64 `json:"publishes_per_second"`
	PublishLatency    Latency `json:"publish_ms"`

	// Expected is published updates × connected subscribers of their
	// topic. Delivered counts distinct (subscriber, update) pairs; Lost the
	// expected ones that never came; Duplicated the repeats; OutOfOrder the
	// updates that came after a later update of the same publisher;
	// Unexpected the updates a subscriber did not subscribe to; Malformed
	// the events whose data is not a bench update. Disconnected counts
	// streams the hub ended before the run did.
	Expected     int64   `json:"expected"`
	Delivered    int64   `json:"delivered"`
	Lost         int64   `json:"lost"`
	Duplicated   int64   `json:"duplicated"`
	OutOfOrder   int64   `json:"out_of_order"`
	Unexpected   int64   `json:"unexpected"`
	Malformed    int64   `json:"malformed"`
	Disconnected int     `json:"disconnected"`
	Latency      Latency `json:"latency_ms"` // publish (before the request) to receive

	// Server is the hub's process, when Config.PID was given and /proc
	// could be read; ServerError says why it could not.
	Server      *ServerStats `json:"server,omitempty"`
	ServerError string       `json:"server_error,omitempty"`

	Seconds  float64 `json:"seconds"`
	TimedOut bool    `json:"timed_out"` // Duration ended the run early

	serverErr error
}

// Latency summarizes a distribution, in milliseconds. Percentiles are
// within about 3%; Max is exact.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func newLatency(s summary) Latency {
	return Latency{Count: s.Count, P50: ms(s.P50), P99: ms(s.P99), Max: ms(s.Max)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ServerStats is the hub process's memory and CPU. RSS readings are taken
// before the subscribers connect (baseline), once they are connected and
// before any publish (connected), and after the drain (end); peak is the
// kernel's high-water mark. RSSPerSubscriber is (connected − baseline) ÷
// connected subscribers: the cost of an idle subscriber. CPU is user +
// system time: CPUConnect while subscribers connected, CPUPublish from the
// first publish to the end of the drain; CPUPerDelivery divides the latter
// by the deliveries, CPUPerPublish by the publishes (with no subscribers,
// the cost of a publish alone).
type ServerStats struct {
	PID              int     `json:"pid"`
	RSSBaseline      int64   `json:"rss_baseline_bytes"`
	RSSConnected     int64   `json:"rss_connected_bytes"`
	RSSEnd           int64   `json:"rss_end_bytes"`
	RSSPeak          int64   `json:"rss_peak_bytes"`
	RSSPerSubscriber float64 `json:"rss_per_subscriber_bytes"`
	CPUConnect       float64 `json:"cpu_connect_seconds"`
	CPUPublish       float64 `json:"cpu_publish_seconds"`
	CPUPerDelivery   float64 `json:"cpu_us_per_delivery"`
	CPUPerPublish    float64 `json:"cpu_us_per_publish"`
}

func (r *runner) newReport() *Report {
	s := r.s
	return &Report{
		Hub:            s.hubURL.String(),
		Draft:          map[bool]string{false: "07", true: "08"}[s.Draft08],
		RunID:          r.runID,
		Subscribers:    s.Subscribers,
		HotSubscribers: s.hot,
		HotTopics:      s.HotTopics,
		Updates:        s.Updates,
		Rate:           s.Rate,
		Payload:        s.Payload,
		Publishers:     s.Publishers,
		Batch:          s.Batch,
	}
}

// WriteJSON writes the report as one line of JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(rep)
}

// WriteText writes the report as a table for people.
func (rep *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	row("hub", "%s (run %s, draft-%s)", rep.Hub, rep.RunID, rep.Draft)
	rate := "unlimited"
	if rep.Rate > 0 {
		rate = fmt.Sprintf("%g/s", rep.Rate)
	}
	row("setup", "%d subscribers (%d on %d hot %s), %d updates at %s, %d B payload, %d %s",
		rep.Subscribers, rep.HotSubscribers, rep.HotTopics, plural(rep.HotTopics, "topic", "topics"),
		rep.Updates, rate, rep.Payload, rep.Publishers, plural(rep.Publishers, "publisher", "publishers"))
	row("connected", "%d in %.1fs, %d failed; connect %s", rep.Connected, rep.ConnectSeconds, rep.ConnectErrors, rep.ConnectLatency)
	if rep.FirstConnectError != "" {
		row("", "first failure: %s", rep.FirstConnectError)
	}
	if rep.Batch > 1 {
		row("batches", "%d updates per request on the batch route", rep.Batch)
	}
	row("published", "%d in %.1fs (%.0f/s), %d failed; request %s", rep.Published, rep.PublishSeconds, rep.PublishRate, rep.PublishErrors, rep.PublishLatency)
	if rep.FirstPublishError != "" {
		row("", "first failure: %s", rep.FirstPublishError)
	}
	if rep.Rate > 0 && rep.Published > 1 && rep.PublishRate < 0.9*rep.Rate {
		row("", "below the requested %g/s: the hub answered too slowly for %d %s (try more --publishers)",
			rep.Rate, rep.Publishers, plural(rep.Publishers, "publisher", "publishers"))
	}
	row("delivered", "%d of %d expected", rep.Delivered, rep.Expected)
	row("lost", "%d", rep.Lost)
	row("duplicated", "%d", rep.Duplicated)
	row("out of order", "%d", rep.OutOfOrder)
	if rep.Unexpected > 0 || rep.Malformed > 0 {
		row("unexpected", "%d on topics not subscribed, %d malformed", rep.Unexpected, rep.Malformed)
	}
	if rep.Disconnected > 0 {
		row("disconnected", "%d streams ended early", rep.Disconnected)
	}
	row("latency", "%s (publish to receive)", rep.Latency)
	if st := rep.Server; st != nil {
		row("server RSS", "%s baseline, %s connected (%s per subscriber), %s end, %s peak (pid %d)",
			mib(st.RSSBaseline), mib(st.RSSConnected), kib(st.RSSPerSubscriber), mib(st.RSSEnd), mib(st.RSSPeak), st.PID)
		row("server CPU", "%.2fs connecting, %.2fs publishing (%.1f µs per delivery, %.1f µs per publish)",
			st.CPUConnect, st.CPUPublish, st.CPUPerDelivery, st.CPUPerPublish)
	}
	if rep.ServerError != "" {
		row("server", "%s", rep.ServerError)
	}
	if rep.TimedOut {
		row("timed out", "the duration cap ended the run early")
	}
	row("took", "%.1fs", rep.Seconds)
	return tw.Flush()
}

// String formats a latency for the table.
func (l Latency) String() string {
	if l.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %.2fms  p99 %.2fms  max %.2fms", l.P50, l.P99, l.Max)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func kib(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }
