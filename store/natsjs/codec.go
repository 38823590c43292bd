package natsjs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ssekit/sse/hub"
)

// The encoding of an update in a JetStream message body. Version 1, all
// integers as Go varints (encoding/binary):
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
// Seq is not in the body: it is the message's stream sequence. Topics are
// in the body, not in the subject, so any string is a topic and the
// subject needs no escaping. A new version gets a new version byte; decode
// keeps reading the old ones.
const (
	formatV1    byte = 1
	flagPrivate byte = 1 << 0
)

// errCorrupt reports a message body that does not decode.
var errCorrupt = errors.New("natsjs: corrupt update message")

// appendUpdate appends the version-1 encoding of u (without its Seq).
func appendUpdate(dst []byte, u *hub.Update) []byte {
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

// encodedSize is an upper bound of len(appendUpdate(nil, u)).
func encodedSize(u *hub.Update) int {
	n := 2 + 6*binary.MaxVarintLen64 + len(u.ID) + len(u.Type) + len(u.Data)
	for _, t := range u.Topics {
		n += binary.MaxVarintLen64 + len(t)
	}
	return n
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeUpdate decodes a body written by appendUpdate, with seq as its Seq.
// The strings are copies: the result does not alias b.
func decodeUpdate(b []byte, seq uint64) (*hub.Update, error) {
	d := decoder{b: b}
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", errCorrupt, len(b))
	}
	if b[0] != formatV1 {
		return nil, fmt.Errorf("%w: unknown version %d", errCorrupt, b[0])
	}
	if b[1]&^flagPrivate != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", errCorrupt, b[1])
	}
	d.b = b[2:]
	u := &hub.Update{Seq: seq, Private: b[1]&flagPrivate != 0}
	u.Time = time.Unix(0, d.varint())
	u.Retry = time.Duration(d.varint())
	u.ID = d.string()
	u.Type = d.string()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) { // each topic takes at least a byte
		d.err = fmt.Errorf("%w: %d topics in %d bytes", errCorrupt, n, len(d.b))
	}
	if d.err == nil && n > 0 {
		u.Topics = make([]string, n)
		for i := range u.Topics {
			u.Topics[i] = d.string()
		}
	}
	u.Data = d.string()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return u, nil
}

// decoder reads varints and strings, keeping the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", errCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad uvarint", errCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: string of %d bytes in %d", errCorrupt, n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
