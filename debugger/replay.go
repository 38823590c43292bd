package debugger

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ssekit/sse"
)

// ErrNothingToReplay is returned by NewReplayHandler for a session without
// events or comments.
var ErrNothingToReplay = errors.New("debugger: the recording has no events or comments")

// ReplayConfig configures a replay.
type ReplayConfig struct {
	// Speed divides the recorded gaps: 2 replays twice as fast. Zero means
	// 1 (the original timing); negative means no waiting at all.
	Speed float64
	// Heartbeat is passed to sse.StreamConfig; zero means its default.
	// Recorded comments are replayed either way.
	Heartbeat time.Duration
}

// replayItem is one recorded event or comment with its wait.
type replayItem struct {
	wait    time.Duration // after the previous item (or the connection)
	event   *sse.Event
	comment string
}

// NewReplayHandler serves a recorded session as an event stream, on every
// path and method: the events (with their ids, types and retry fields) and
// comments, with the recorded gaps between them. A request with a
// Last-Event-ID that names a recorded event resumes after it, at once; one
// that names the last event gets 204 No Content, so that an EventSource
// stops instead of replaying from the start.
func NewReplayHandler(recs []Record, cfg ReplayConfig) (http.Handler, error) {
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	var (
		items []replayItem
		prev  float64
		first = true
	)
	for _, r := range recs {
		switch r.Kind {
		case KindOpen:
			if first {
				prev = r.T // the first event's wait counts from the connection
			}
			continue
		case KindEvent, KindComment:
		default:
			continue
		}
		it := replayItem{}
		if cfg.Speed > 0 && r.T > prev {
			it.wait = time.Duration((r.T - prev) / cfg.Speed * float64(time.Millisecond))
		}
		first = false
		prev = r.T
		if r.Kind == KindComment {
			// The recorded text keeps the space after the colon, which
			// Stream.Comment writes itself.
			it.comment = strings.TrimPrefix(r.Text, " ")
		} else {
			ev := &sse.Event{ID: r.ID, Type: r.Type, Data: r.Data}
			if ev.Type == "message" {
				ev.Type = ""
			}
			if r.Retry != nil {
				ev.Retry, ev.HasRetry = time.Duration(*r.Retry)*time.Millisecond, true
			}
			it.event = ev
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil, ErrNothingToReplay
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveReplay(w, r, items, cfg)
	}), nil
}

func serveReplay(w http.ResponseWriter, r *http.Request, items []replayItem, cfg ReplayConfig) {
	start := 0
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		for i := len(items) - 1; i >= 0; i-- {
			if items[i].event != nil && items[i].event.ID == last {
				start = i + 1
				break
			}
		}
		if start >= len(items) {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	stream, err := sse.NewStream(w, r, sse.StreamConfig{Heartbeat: cfg.Heartbeat})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer stream.Close()
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for i := start; i < len(items); i++ {
		it := items[i]
		// A resumed replay starts at once; the first connection waits as
		// the recorded one did.
		if it.wait > 0 && (i > start || start == 0) {
			timer.Reset(it.wait)
			select {
			case <-timer.C:
			case <-stream.Context().Done():
				return
			}
		}
		if it.event != nil {
			if err := stream.Send(*it.event); err != nil {
				return
			}
		} else if err := stream.Comment(it.comment); err != nil {
			return
		}
	}
}
