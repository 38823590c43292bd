package redisstream

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// defaultDialTimeout bounds one connection attempt of a client made by
// NewClient, unless the URL sets dial_timeout: an Append while Redis is
// unreachable fails within it (at once when the connection is refused).
const defaultDialTimeout = 2 * time.Second

// NewClient returns a go-redis client for a store URL and the key prefix
// it names. The forms:
//
//	redis://[user:password@]host:6379[/db][?options]
//	rediss://…                                       (TLS)
//	redis+sentinel://[user:password@]sentinel:26379[/db]?master_name=NAME[&addr=sentinel2:26379…]
//	redis+cluster://[user:password@]node:6379[?addr=node2:6379&addr=node3:6379…]
//
// (rediss+sentinel and rediss+cluster for TLS). The options are go-redis's
// (dial_timeout, read_timeout, pool_size, …; see redis.ParseURL,
// redis.ParseFailoverURL and redis.ParseClusterURL), plus the store's own:
//
//	prefix=NAME   the key prefix (default "ssekit"), see Config.Prefix
//
// Unless the URL says otherwise, the client never retries a command
// (max_retries=-1: a retried Append whose reply was lost would be refused
// as a duplicate of itself), tries one dial per connection and gives it
// 2 s, so a publish fails fast when Redis is unreachable.
func NewClient(rawURL string) (client redis.UniversalClient, prefix string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("%w: store URL: %w", ErrInvalidConfig, err)
	}
	q := u.Query()
	prefix = q.Get("prefix")
	q.Del("prefix")
	retriesSet, dialSet := q.Has("max_retries"), q.Has("dial_timeout")
	u.RawQuery = q.Encode()

	scheme, topology, _ := strings.Cut(u.Scheme, "+")
	if scheme != "redis" && scheme != "rediss" {
		return nil, "", fmt.Errorf("%w: store URL scheme %q: use redis, rediss, redis+sentinel or redis+cluster", ErrInvalidConfig, u.Scheme)
	}
	u.Scheme = scheme
	s := u.String()
	switch topology {
	case "":
		o, err := redis.ParseURL(s)
		if err != nil {
			return nil, "", fmt.Errorf("%w: store URL: %w", ErrInvalidConfig, err)
		}
		if !retriesSet {
			o.MaxRetries = -1
		}
		if !dialSet {
			o.DialTimeout = defaultDialTimeout
		}
		o.DialerRetries = 1
		return redis.NewClient(o), prefix, nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(s)
		if err != nil {
			return nil, "", fmt.Errorf("%w: store URL: %w", ErrInvalidConfig, err)
		}
		if o.MasterName == "" {
			return nil, "", fmt.Errorf("%w: store URL %s: sentinel needs master_name=NAME", ErrInvalidConfig, u.Redacted())
		}
		if !retriesSet {
			o.MaxRetries = -1
		}
		if !dialSet {
			o.DialTimeout = defaultDialTimeout
		}
		return redis.NewFailoverClient(o), prefix, nil
	case "cluster":
		o, err := redis.ParseClusterURL(s)
		if err != nil {
			return nil, "", fmt.Errorf("%w: store URL: %w", ErrInvalidConfig, err)
		}
		if !retriesSet {
			o.MaxRetries = -1
		}
		if !dialSet {
			o.DialTimeout = defaultDialTimeout
		}
		return redis.NewClusterClient(o), prefix, nil
	default:
		return nil, "", fmt.Errorf("%w: store URL scheme %q: use redis, rediss, redis+sentinel or redis+cluster", ErrInvalidConfig, u.Scheme)
	}
}
