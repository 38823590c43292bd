// Package updatecodec is the compact binary form in which the stores that
// keep bytes (bolt, NATS JetStream) record a hub.Update: one format, so a
// record written by one reads the same everywhere.
package updatecodec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ssekit/sse/hub"
)

// The encoding of an update. Version 1, all integers as Go varints (encoding/binary):
//
//	byte     version (1)
//	byte     flags: bit 0 = Private; other bits zero
//	varint   Time as Unix nanoseconds
//	varint   Retry in nanoseconds
//	uvarint  len(ID), ID bytes
//	uvarint  len(Type), Type bytes
//	uvarint  number of topics, then for each: uvarint len, bytes
//	uvarint  len(Data), Data bytes
//
// Seq is not in the record: each store keeps it as the record's position
// (bolt's key, JetStream's stream sequence). Time comes right after the
// header so age-based retention reads it without decoding the rest. A new version
// gets a new version byte; decode keeps reading the old ones.
const (
	formatV1    byte = 1
	flagPrivate byte = 1 << 0
)

// ErrCorrupt reports a value that does not decode; it wraps the reason.
var ErrCorrupt = errors.New("updatecodec: corrupt update record")

// Append appends the version-1 encoding of u (without its Seq) to dst.
func Append(dst []byte, u *hub.Update) []byte {
	var flags byte
	if u.Private {
		flags |= flagPrivate
	}
	dst = append(dst, formatV1, flags)
	dst = binary.AppendVarint(dst, u.Time.UnixNano())
	dst = binary.AppendVarint(dst, int64(u.Retry))
	dst = appendString(dst, u.ID)
	dst = appendString(dst, u.Type)
	dst = binary.AppendUvarint(dst, uint64(len(u.Topics)))
	for _, t := range u.Topics {
		dst = appendString(dst, t)
	}
	return appendString(dst, u.Data)
}

// EncodedSize is an upper bound of len(Append(nil, u)), to size the
// buffer once.
func EncodedSize(u *hub.Update) int {
	n := 2 + 2*binary.MaxVarintLen64 + 3*binary.MaxVarintLen64 + len(u.ID) + len(u.Type) + len(u.Data)
	n += binary.MaxVarintLen64
	for _, t := range u.Topics {
		n += binary.MaxVarintLen64 + len(t)
	}
	return n
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Decode decodes a record written by Append, giving it seq. The strings
// are copies, so the result outlives the buffer b came from.
func Decode(b []byte, seq uint64) (*hub.Update, error) {
	d := decoder{b: b}
	if err := d.header(); err != nil {
		return nil, err
	}
	u := &hub.Update{Seq: seq, Private: d.flags&flagPrivate != 0}
	u.Time = time.Unix(0, d.varint())
	u.Retry = time.Duration(d.varint())
	// The strings are copied out in one piece, from the id to the end, and
	// each field is a slice of that copy: one allocation for all of them.
	base := len(b) - len(d.b)
	id := d.span(len(b))
	typ := d.span(len(b))
	var topics []span
	if n := d.uvarint(); n > 0 {
		if n > uint64(len(d.b)) { // each topic takes at least one byte
			return nil, fmt.Errorf("%w: %d topics in %d bytes", ErrCorrupt, n, len(d.b))
		}
		topics = make([]span, n)
		for i := range topics {
			topics[i] = d.span(len(b))
		}
	}
	data := d.span(len(b))
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	all := string(b[base:])
	field := func(sp span) string { return all[sp.start-base : sp.end-base] }
	u.ID, u.Type, u.Data = field(id), field(typ), field(data)
	if len(topics) > 0 {
		u.Topics = make([]string, len(topics))
		for i, sp := range topics {
			u.Topics[i] = field(sp)
		}
	}
	return u, nil
}

// span is where a length-prefixed field's bytes are in the record.
type span struct{ start, end int }

// span reads a length-prefixed field and returns its position in the
// record of total length size.
func (d *decoder) span(size int) span {
	f := d.bytes()
	end := size - len(d.b)
	return span{end - len(f), end}
}

// PeekTimeID decodes only the time and the id of a value, for retention.
func PeekTimeID(b []byte) (time.Time, []byte, error) {
	d := decoder{b: b}
	if err := d.header(); err != nil {
		return time.Time{}, nil, err
	}
	t := time.Unix(0, d.varint())
	d.varint() // Retry
	id := d.bytes()
	return t, id, d.err
}

// PeekTime decodes only the time of a value.
func PeekTime(b []byte) (time.Time, error) {
	d := decoder{b: b}
	if err := d.header(); err != nil {
		return time.Time{}, err
	}
	t := time.Unix(0, d.varint())
	return t, d.err
}

// decoder reads varint fields; the first error sticks and later reads
// return zero values.
type decoder struct {
	b     []byte
	flags byte
	err   error
}

func (d *decoder) header() error {
	if len(d.b) < 2 {
		return fmt.Errorf("%w: %d bytes", ErrCorrupt, len(d.b))
	}
	if d.b[0] != formatV1 {
		return fmt.Errorf("%w: unknown format version %d", ErrCorrupt, d.b[0])
	}
	d.flags = d.b[1]
	d.b = d.b[2:]
	return nil
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length")
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}
