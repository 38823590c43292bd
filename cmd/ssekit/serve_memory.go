package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// Memory policy of `ssekit serve` (docs/BENCHMARKS.md, "Lean connections,
// second round"). An idle subscriber's live data is about 0.8 KiB (the
// heap profile in the h1lean4 section), but with the collector's default headroom (GOGC=100) the heap grows to twice the
// live data before a collection, and the pages freed are kept for reuse:
// RSS is 3–3.5 times the live data. Two things keep that headroom from
// multiplying the subscribers' cost:
//
//   - a soft memory limit (runtime/debug.SetMemoryLimit, as GOMEMLIMIT):
//     by default 90% of the memory the process may use (the cgroup's
//     memory.max, else MemTotal), lowered to a budget of
//     memoryBase + memoryPerSubscriber per --max-subscribers when that is
//     smaller, so that a full hub collects harder instead of growing into
//     the machine's other tenants. The budget is generous (a TLS HTTP/2
//     connection with a queued backlog fits), so a hub within its limits
//     never runs its collector against the limit. GOMEMLIMIT in the
//     environment, or --memory-limit, overrides it.
//   - a trimmer: when the heap holds more free pages and garbage than a
//     quarter of the live data, or than trimFloor once allocation has
//     gone quiet (a wave of subscriptions, whose request handling left
//     its garbage, has ended), it collects and returns those pages to
//     the OS (debug.FreeOSMemory), the buffers idle in sync.Pools
//     included. It runs at
//     most once per trimEvery, and never more often than 100 times its
//     own duration, so it costs at most 1% of one core however large the
//     heap: delivery does not pay for it.
const (
	memoryBase          = 64 << 20
	memoryPerSubscriber = 32 << 10
	trimFloor           = 4 << 20
	trimEvery           = 5 * time.Second
)

// parseMemoryLimit reads --memory-limit: "auto", "off", or a size in bytes
// with an optional KiB/MiB/GiB (or K/M/G) suffix.
func parseMemoryLimit(s string) (limit int64, auto bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return 0, true, nil
	case "off", "0":
		return -1, false, nil
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(strings.ToLower(num), u.suffix) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, false, fmt.Errorf("--memory-limit %q: want auto, off, or a size such as 512MiB", s)
	}
	return n * mult, false, nil
}

// autoMemoryLimit is the limit "auto" sets for maxSubs subscribers (<= 0:
// no subscriber limit) on a machine whose process may use avail bytes
// (0: unknown); 0 when there is nothing to base it on.
func autoMemoryLimit(avail int64, maxSubs int) int64 {
	limit := avail / 10 * 9
	if maxSubs > 0 {
		budget := memoryBase + int64(maxSubs)*memoryPerSubscriber
		if limit == 0 || budget < limit {
			limit = budget
		}
	}
	return limit
}

// availableMemory is what this process may use: its cgroup's memory.max
// when one is set, else the machine's MemTotal; 0 when neither is known.
func availableMemory() int64 {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// applyMemoryLimit sets the process's soft memory limit per --memory-limit
// and returns it (-1: none set by us).
func applyMemoryLimit(flagValue string, maxSubs int) (int64, error) {
	limit, auto, err := parseMemoryLimit(flagValue)
	if err != nil {
		return 0, err
	}
	if auto {
		if os.Getenv("GOMEMLIMIT") != "" {
			return -1, nil // the runtime already applied it
		}
		limit = autoMemoryLimit(availableMemory(), maxSubs)
		if limit <= 0 {
			return -1, nil
		}
	}
	if limit < 0 {
		debug.SetMemoryLimit(1<<63 - 1) // off, even over GOMEMLIMIT
		return -1, nil
	}
	debug.SetMemoryLimit(limit)
	return limit, nil
}

// shouldTrim reports whether the trimmer collects now: spare bytes (free
// pages and garbage) over a quarter of the live heap, or over trimFloor
// once allocation is quiet (under trimFloor since the last look: a wave of
// subscriptions has ended, and its last seconds' garbage, rarely a quarter
// of the live heap, would otherwise stay until the next wave).
func shouldTrim(spare, live, allocatedSince uint64) bool {
	return spare > trimFloor && (spare > live/4 || allocatedSince < trimFloor)
}

// trimMemory returns the heap's free pages to the OS when shouldTrim
// says so, until ctx ends (see the policy above).
func trimMemory(ctx context.Context) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	pause := trimEvery
	t := time.NewTimer(pause)
	defer t.Stop()
	var lastAllocs uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		for _, s := range samples {
			if s.Value.Kind() != metrics.KindUint64 {
				return // a runtime without these metrics: no trimming
			}
		}
		// Spare: pages free for reuse, and objects allocated since the
		// last collection (garbage, mostly, in an idle hub).
		free, live, objects, allocs := samples[0].Value.Uint64(), samples[1].Value.Uint64(), samples[2].Value.Uint64(), samples[3].Value.Uint64()
		spare := free + objects - min(objects, live)
		trim := shouldTrim(spare, live, allocs-lastAllocs)
		lastAllocs = allocs
		pause = trimEvery
		if trim {
			start := time.Now()
			// Two collections: the first moves what sync.Pools hold into
			// their victim caches, FreeOSMemory's frees it. With one, the
			// out buffers a wave of TLS HTTP/2 handshakes left in h2serve's
			// pool (1.7 KB per connection at 10,000) stayed, counted as
			// live, so no later pass came for them.
			runtime.GC()
			debug.FreeOSMemory()
			pause = max(trimEvery, 100*time.Since(start))
			metrics.Read(samples[3:]) // the trim's own allocations are not a wave's
			lastAllocs = samples[3].Value.Uint64()
		}
		t.Reset(pause)
	}
}
