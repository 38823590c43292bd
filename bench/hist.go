package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histSubBits sets the histogram's precision: every power of two is split
// into 2^histSubBits buckets, so a bucket is at most 1/32 (about 3%) of
// its values wide.
const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits + 1) << histSubBits
)

// hist is a log-linear histogram of non-negative durations in nanoseconds,
// in the manner of HdrHistogram: fixed size (15 KB), safe for concurrent
// use, exact below 32 ns and within about 3% above.
type hist struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return (shift+1)<<histSubBits + int(v>>shift) - histSub
}

// histBounds returns the smallest and largest values of bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	shift := i>>histSubBits - 1
	m := uint64(i&(histSub-1) + histSub)
	return m << shift, (m+1)<<shift - 1
}

func (h *hist) record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[histIndex(uint64(v))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// summary is what a report shows of a histogram.
type summary struct {
	Count uint64
	P50   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// summarize merges histograms and reads the 50th and 99th percentiles (the
// middle of the bucket that holds them, never above the maximum) and the
// exact maximum. Call it once recording has stopped.
func summarize(hs ...*hist) summary {
	var counts [histBuckets]uint64
	var s summary
	for _, h := range hs {
		for i := range counts {
			counts[i] += h.counts[i].Load()
		}
		s.Count += h.n.Load()
		s.Max = max(s.Max, time.Duration(h.max.Load()))
	}
	if s.Count == 0 {
		return s
	}
	s.P50 = min(quantile(&counts, s.Count, 0.50), s.Max)
	s.P99 = min(quantile(&counts, s.Count, 0.99), s.Max)
	return s
}

func quantile(counts *[histBuckets]uint64, n uint64, q float64) time.Duration {
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			lo, hi := histBounds(i)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return 0
}
