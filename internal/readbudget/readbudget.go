// Package readbudget bounds what a peer can make a reader take: a Reader
// fails once it has read its budget, which the caller sets again for each
// unit it bounds (an HTTP/2 frame, an HTTP response).
package readbudget

import "io"

// Reader reads from R at most Left bytes, then returns Err.
type Reader struct {
	R    io.Reader
	Left int
	Err  error
}

func (b *Reader) Read(p []byte) (int, error) {
	if b.Left <= 0 {
		return 0, b.Err
	}
	if len(p) > b.Left {
		p = p[:b.Left]
	}
	n, err := b.R.Read(p)
	b.Left -= n
	return n, err
}
