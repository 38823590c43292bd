package debugger

// maxRawBlock bounds the raw bytes kept for one event: a larger block keeps
// its start only.
const maxRawBlock = 1 << 20

// LineEnds counts the line terminators of a stream.
type LineEnds struct {
	LF   int `json:"lf"`
	CRLF int `json:"crlf"`
	CR   int `json:"cr"`
}

// Mixed reports whether the stream used more than one kind.
func (l LineEnds) Mixed() bool {
	kinds := 0
	for _, n := range [...]int{l.LF, l.CRLF, l.CR} {
		if n > 0 {
			kinds++
		}
	}
	return kinds > 1
}

// blockSplitter cuts a stream's raw bytes into the blocks that dispatch an
// event, so that each decoded event can be shown with the bytes it came
// from. A block dispatches when it has a data field (the decoder's rule:
// an empty data buffer dispatches nothing); the bytes of other blocks
// (comments alone, a lone id) are dropped. It sees the same bytes as the
// decoder, before it, so blocks are ready by the time their event is.
type blockSplitter struct {
	// OnLine, when set, is called with every complete line, without its
	// terminator (valid during the call only).
	OnLine func(line []byte)

	cur       []byte // the block being read
	lineStart int    // offset in cur of the current line
	afterCR   bool   // the last byte was a CR: a following LF belongs to it
	// cutPending: a blank line ended by CR ends the block once the next
	// byte is known; detached: that block was taken, drop the LF.
	cutPending, detached bool
	data                 bool // the block has a data field
	truncated            bool // cur reached maxRawBlock
	started              bool // a byte was seen (for the BOM)
	ends                 LineEnds
	pending              [][]byte // complete dispatching blocks, oldest first
}

// Write adds bytes of the stream.
func (s *blockSplitter) Write(p []byte) {
	for _, b := range p {
		if s.afterCR {
			s.afterCR = false
			if b == '\n' {
				s.ends.CRLF++
				if !s.detached {
					s.add(b)
				}
				s.detached = false
				s.lineStart = len(s.cur) // the next line starts after the LF
				if s.cutPending {
					s.cut()
				}
				continue
			}
			s.ends.CR++
			s.detached = false
			if s.cutPending {
				s.cut()
			}
		}
		s.add(b)
		switch b {
		case '\n':
			s.ends.LF++
			s.endLine(len(s.cur)-1, false)
		case '\r':
			s.afterCR = true
			s.endLine(len(s.cur)-1, true)
		}
	}
}

func (s *blockSplitter) add(b byte) {
	if len(s.cur) < maxRawBlock {
		s.cur = append(s.cur, b)
	} else {
		s.truncated = true
	}
}

// endLine handles the line that ends at cur[end] (the terminator). A blank
// line ended by CR is cut when the next byte shows whether an LF belongs
// to it.
func (s *blockSplitter) endLine(end int, cr bool) {
	if end < s.lineStart { // truncated block: lines are no longer seen
		return
	}
	line := s.cur[s.lineStart:end]
	if !s.started {
		s.started = true
		if len(line) >= 3 && line[0] == 0xEF && line[1] == 0xBB && line[2] == 0xBF {
			line = line[3:]
		}
	}
	if s.OnLine != nil {
		s.OnLine(line)
	}
	switch {
	case len(line) == 0:
		if cr {
			s.cutPending = true
		} else {
			s.cut()
		}
		return
	case len(line) >= 4 && string(line[:4]) == "data" && (len(line) == 4 || line[4] == ':'):
		s.data = true
	}
	s.lineStart = len(s.cur)
}

// cut ends the block at a blank line.
func (s *blockSplitter) cut() {
	if s.data {
		s.pending = append(s.pending, s.cur)
	}
	s.cur, s.data, s.truncated, s.cutPending = nil, false, false, false
	s.lineStart = 0
}

// Pop returns the raw bytes of the oldest dispatched block, or nil.
func (s *blockSplitter) Pop() []byte {
	if len(s.pending) == 0 && s.cutPending {
		// The decoder dispatched at a CR before the next byte came: cut
		// now, and let an LF that follows belong to no block.
		s.cut()
		s.detached = true
	}
	if len(s.pending) == 0 {
		return nil
	}
	b := s.pending[0]
	s.pending[0] = nil
	s.pending = s.pending[1:]
	return b
}

// Reset starts over for a new connection (the decoder drops an
// unterminated block at the end of a connection).
func (s *blockSplitter) Reset() {
	onLine, ends := s.OnLine, s.ends
	*s = blockSplitter{OnLine: onLine, ends: ends}
}

// LineEnds returns the line terminators seen so far.
func (s *blockSplitter) LineEnds() LineEnds {
	e := s.ends
	if s.afterCR {
		e.CR++ // a CR at the very end
	}
	return e
}
