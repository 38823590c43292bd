package redisstream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ssekit/sse/hub"
)

// Seq encoding. A stream entry id is "ms-n": the Redis server's clock in
// milliseconds and a counter within that millisecond. Seq packs both into
// one uint64 that sorts as the ids do:
//
//	Seq = ms<<seqBits | n
//
// with n in the low 22 bits and ms in the high 42. The limits: ms below
// 2^42 (the year 2109), and n below 2^22 (4,194,304 entries in one
// millisecond). The append script chooses every entry id itself (see
// appendScript) and carries into the next millisecond instead of letting n
// reach 2^22, which Redis's own "*" ids could do after the server's clock
// jumps back; so every id the store writes has a Seq, and Seq order is
// stream order.
const (
	seqBits = 22
	maxN    = 1<<seqBits - 1
	maxMs   = 1<<(64-seqBits) - 1
)

// errEntryID reports a stream entry id that is not "ms-n" within the
// limits of the Seq encoding (an entry not written by this store).
var errEntryID = errors.New("redisstream: entry id out of the Seq encoding")

// seqOf returns the Seq of the entry id "ms-n".
func seqOf(id string) (uint64, error) {
	msStr, nStr, ok := strings.Cut(id, "-")
	if !ok {
		return 0, fmt.Errorf("%w: %q", errEntryID, id)
	}
	ms, err1 := strconv.ParseUint(msStr, 10, 64)
	n, err2 := strconv.ParseUint(nStr, 10, 64)
	if err1 != nil || err2 != nil || ms > maxMs || n > maxN {
		return 0, fmt.Errorf("%w: %q", errEntryID, id)
	}
	return ms<<seqBits | n, nil
}

// entryID returns the stream entry id of seq: the inverse of seqOf.
func entryID(seq uint64) string {
	return strconv.FormatUint(seq>>seqBits, 10) + "-" + strconv.FormatUint(seq&maxN, 10)
}

// timeOf is the time the Redis server gave the entry of seq.
func timeOf(seq uint64) time.Time { return time.UnixMilli(int64(seq >> seqBits)) }

// Stream entry fields. An entry holds one update, readable with redis-cli
// XRANGE; empty fields are left out:
//
//	id       the update id
//	topics   each topic as its length in bytes, ":", the topic (so any
//	         bytes, commas and newlines included, round-trip)
//	type     the SSE event type
//	data     the payload
//	retry    Retry in nanoseconds, decimal
//	private  "1" when private
//
// Seq and Time are not stored: both come from the entry id.
const (
	fieldID      = "id"
	fieldTopics  = "topics"
	fieldType    = "type"
	fieldData    = "data"
	fieldRetry   = "retry"
	fieldPrivate = "private"
)

// errEntry reports a stream entry that does not decode.
var errEntry = errors.New("redisstream: malformed stream entry")

// appendFields appends u's entry fields as name, value pairs (script
// arguments).
func appendFields(dst []any, u *hub.Update) []any {
	dst = append(dst, fieldID, u.ID)
	if len(u.Topics) > 0 {
		dst = append(dst, fieldTopics, encodeTopics(u.Topics))
	}
	if u.Type != "" {
		dst = append(dst, fieldType, u.Type)
	}
	if u.Data != "" {
		dst = append(dst, fieldData, u.Data)
	}
	if u.Retry != 0 {
		dst = append(dst, fieldRetry, strconv.FormatInt(int64(u.Retry), 10))
	}
	if u.Private {
		dst = append(dst, fieldPrivate, "1")
	}
	return dst
}

func encodeTopics(topics []string) string {
	n := 0
	for _, t := range topics {
		n += len(t) + 6
	}
	b := make([]byte, 0, n)
	for _, t := range topics {
		b = strconv.AppendInt(b, int64(len(t)), 10)
		b = append(b, ':')
		b = append(b, t...)
	}
	return string(b)
}

func decodeTopics(s string) ([]string, error) {
	var topics []string
	for s != "" {
		lenStr, rest, ok := strings.Cut(s, ":")
		n, err := strconv.Atoi(lenStr)
		if !ok || err != nil || n < 0 || n > len(rest) {
			return nil, fmt.Errorf("%w: topics", errEntry)
		}
		topics = append(topics, rest[:n])
		s = rest[n:]
	}
	return topics, nil
}

// decodeEntry returns the update in the stream entry with the given id and
// fields (as go-redis returns them: string values).
func decodeEntry(id string, values map[string]any) (*hub.Update, error) {
	seq, err := seqOf(id)
	if err != nil {
		return nil, err
	}
	str := func(name string) string {
		s, _ := values[name].(string)
		return s
	}
	u := &hub.Update{ID: str(fieldID), Type: str(fieldType), Data: str(fieldData), Seq: seq, Time: timeOf(seq)}
	if u.ID == "" {
		return nil, fmt.Errorf("%w %s: no id", errEntry, id)
	}
	if u.Topics, err = decodeTopics(str(fieldTopics)); err != nil {
		return nil, fmt.Errorf("%w (entry %s)", err, id)
	}
	if r := str(fieldRetry); r != "" {
		ns, err := strconv.ParseInt(r, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w %s: retry %q", errEntry, id, r)
		}
		u.Retry = time.Duration(ns)
	}
	u.Private = str(fieldPrivate) == "1"
	return u, nil
}
