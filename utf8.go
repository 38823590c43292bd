package sse

import (
	"unicode/utf8"
)

// decodeUTF8 converts b to a string as the WHATWG "UTF-8 decode" algorithm
// does: valid input is copied as is, and each maximal ill-formed subsequence
// becomes one U+FFFD. (Go's own conversions differ on truncated sequences:
// utf8.DecodeRune reports each byte, strings.ToValidUTF8 each run.)
func decodeUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			out = append(out, b[i])
			i++
			continue
		}
		if _, size := utf8.DecodeRune(b[i:]); size > 1 {
			out = append(out, b[i:i+size]...)
			i += size
			continue
		}
		out = utf8.AppendRune(out, utf8.RuneError)
		i += illFormedLen(b[i:])
	}
	return string(out)
}

// illFormedLen returns the length of the maximal ill-formed subsequence at
// the start of b, which does not begin with a valid sequence: the lead byte
// plus the continuation bytes that were valid for it before the sequence
// broke off (at least 1).
func illFormedLen(b []byte) int {
	lead := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // range allowed for the first continuation byte
	switch {
	case lead >= 0xC2 && lead <= 0xDF:
		need = 1
	case lead == 0xE0:
		need, lo = 2, 0xA0
	case lead == 0xED:
		need, hi = 2, 0x9F
	case lead >= 0xE1 && lead <= 0xEF:
		need = 2
	case lead == 0xF0:
		need, lo = 3, 0x90
	case lead == 0xF4:
		need, hi = 3, 0x8F
	case lead >= 0xF1 && lead <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}
