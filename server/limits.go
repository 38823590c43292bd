package server

import (
	"crypto/sha256"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxSubscribers is the subscriber limit of a Config that sets
// none: what the process's open-file limit leaves once a reserve is kept
// for everything else (the listener, the store, publishers' and refused
// clients' connections, the 503s themselves): limit − max(128, limit/10).
// So a hub at its limit answers 503 with Retry-After instead of failing
// accepts. Where the limit cannot be read it is 10,000.
func DefaultMaxSubscribers() int { return maxSubscribersFor(openFileLimit()) }

const fallbackMaxSubscribers = 10000

func maxSubscribersFor(openFiles uint64) int {
	if openFiles == 0 {
		return fallbackMaxSubscribers
	}
	reserve := max(128, openFiles/10)
	if openFiles <= reserve {
		return 1 // the limit is too low to serve: at least answer 503 after one
	}
	return int(min(openFiles-reserve, 1<<31-1))
}

// subscriberLimits counts subscribers in total and per client address.
type subscriberLimits struct {
	max, perClient int

	mu       sync.Mutex // guards total and byClient
	total    int
	byClient map[string]int
}

// newSubscriberLimits counts against max subscribers in total (negative:
// no limit) and perClient per client address (0: no limit).
func newSubscriberLimits(max, perClient int) *subscriberLimits {
	return &subscriberLimits{max: max, perClient: perClient, byClient: make(map[string]int)}
}

// acquire counts a new subscriber from remoteAddr, or says why not.
func (l *subscriberLimits) acquire(remoteAddr string) error {
	host := clientHost(remoteAddr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max >= 0 && l.total >= l.max {
		return tooBusy(http.StatusServiceUnavailable, "subscriber limit reached ("+strconv.Itoa(l.max)+")", retryAfterOverloaded)
	}
	if l.perClient > 0 && l.byClient[host] >= l.perClient {
		return tooBusy(http.StatusTooManyRequests, "too many subscriptions from "+host+" (max "+strconv.Itoa(l.perClient)+")", retryAfterOverloaded)
	}
	l.total++
	l.byClient[host]++
	return nil
}

func (l *subscriberLimits) release(remoteAddr string) {
	host := clientHost(remoteAddr)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.byClient[host] - 1; n > 0 {
		l.byClient[host] = n
	} else {
		delete(l.byClient, host)
	}
}

// clientAddr is the address a request is counted and logged as coming
// from: the connection's, or behind a trusted proxy the client that
// X-Forwarded-For names. Walking the header from the right, the first
// address that is not a trusted proxy is the client: entries left of it
// were written by the client itself and prove nothing.
func (s *Server) clientAddr(r *http.Request) string {
	if len(s.cfg.TrustedProxies) == 0 || !s.trusted(clientHost(r.RemoteAddr)) {
		return r.RemoteAddr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if _, err := netip.ParseAddr(hop); err != nil {
			break // malformed: stop at what the proxies vouch for
		}
		if !s.trusted(hop) {
			return hop
		}
	}
	return r.RemoteAddr
}

func (s *Server) trusted(host string) bool {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func clientHost(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// rateLimiter is a token bucket per key (a publisher token's identity), refilled
// at rate per second up to burst. Idle buckets are dropped so the map
// stays bounded by the number of recently active keys.
type rateLimiter struct {
	rate  float64
	burst float64

	mu        sync.Mutex // guards buckets and lastSweep
	buckets   map[[32]byte]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), buckets: make(map[[32]byte]*bucket)}
}

// allowN takes n tokens for key when it has at least one (a batch larger
// than the burst goes through and leaves the bucket in debt, so the next
// publishes wait for the whole of it), or says how long until one is
// available.
func (l *rateLimiter) allowN(key string, n int) (time.Duration, bool) {
	now := time.Now()
	k := sha256.Sum256([]byte(key)) // the map keeps no token
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		l.sweepLocked(now)
	}
	b := l.buckets[k]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[k] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
	}
	b.tokens -= float64(n)
	return 0, true
}

// sweepLocked drops buckets that have refilled completely: they are
// indistinguishable from new ones.
func (l *rateLimiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		full := time.Duration((l.burst - b.tokens) / l.rate * float64(time.Second)) // a batch's debt included
		if now.Sub(b.last) > full {
			delete(l.buckets, k)
		}
	}
}
