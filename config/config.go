// Package config reads the hub's configuration file: TOML, for what flags
// cannot say well (several issuers, the auth hook, and later webhooks and
// topic policies), and every serve flag under [serve] by its name.
//
// The file is data only: this package decodes and checks its shape; what
// a section means is decided by the package that uses it (cmd/ssekit maps
// it onto jwtauth.Issuer and authhook.Config). Every error names the file,
// the line and the key, and unknown keys are refused, so a typo never
// silently leaves a default in place.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// MaxFileBytes bounds the file read: a configuration is kilobytes.
const MaxFileBytes = 1 << 20

// Errors.
var (
	// ErrInvalid is wrapped by every error about the file's content.
	ErrInvalid = errors.New("config: invalid file")
)

// File is a parsed configuration file.
type File struct {
	// Serve sets serve flags by name (addr, jwt-key, history-size, …).
	// Values are kept as text, as on a command line: the flag parses it.
	Serve map[string]Value `toml:"serve"`
	// Issuers are draft-08 access-token issuers, each with its keys.
	Issuers []Issuer `toml:"issuer"`
	// AuthHook, when set, lets the application decide subscribes (and
	// publishes) over HTTP.
	AuthHook *AuthHook `toml:"auth-hook"`
	// Webhooks are the endpoints told of what the hub does.
	Webhooks []Webhook `toml:"webhook"`
	// Policies are topic policies (policy.Policy).
	Policies []Policy `toml:"policy"`

	name string
	data []byte
}

// Value is a scalar TOML value kept as its text (a string as it is, a
// number or a boolean as Go prints it).
type Value struct{ Text string }

// UnmarshalText implements encoding.TextUnmarshaler; the TOML decoder
// hands it strings, integers, floats and booleans as text and refuses
// tables and arrays with the key's line.
func (v *Value) UnmarshalText(b []byte) error {
	v.Text = string(b)
	return nil
}

// Issuer is one [[issuer]]: an access-token issuer (jwtauth.Issuer).
type Issuer struct {
	// ID is the issuer identifier, a token's "iss" (required).
	ID string `toml:"id"`
	// Alg is the algorithm of Keys, PublisherKeys and SubscriberKeys
	// (default: from the key for PEM or a JWK, else HS256).
	Alg string `toml:"alg"`
	// Keys verify both roles' tokens; each is what --jwt-key takes (a
	// secret, PEM, a JWK, or @FILE).
	Keys []string `toml:"keys"`
	// PublisherKeys and SubscriberKeys verify one role's tokens only.
	PublisherKeys  []string `toml:"publisher-keys"`
	SubscriberKeys []string `toml:"subscriber-keys"`
	// JWKS is the URL of a key set verifying both roles, or "discover" to
	// find it in the issuer's metadata.
	JWKS string `toml:"jwks"`
}

// AuthHook is the [auth-hook] section; authhook.Config documents each
// field's meaning and default.
type AuthHook struct {
	URL              string   `toml:"url"`
	Subscribe        *bool    `toml:"subscribe"` // nil: true
	Publish          bool     `toml:"publish"`
	Timeout          Duration `toml:"timeout"`
	Concurrency      int      `toml:"concurrency"`
	ForwardHeaders   []string `toml:"forward-headers"`
	ForwardCookies   []string `toml:"forward-cookies"`
	PrivateTopics    []string `toml:"private-topics"`
	PublishTopics    []string `toml:"publish-topics"`
	MaxCacheTTL      Duration `toml:"max-cache-ttl"`
	CacheEntries     int      `toml:"cache-entries"`
	MaxPayloadBytes  int      `toml:"max-payload-bytes"`
	MaxResponseBytes int      `toml:"max-response-bytes"`
	RetryAfter       Duration `toml:"retry-after"`
}

// Webhook is one [[webhook]] endpoint (webhook.Endpoint).
type Webhook struct {
	// Name names its queue in the outbox (required, unique).
	Name string `toml:"name"`
	URL  string `toml:"url"`
	// Secrets sign the deliveries (the first is current; others while
	// rotating); each a string or @FILE.
	Secrets []string `toml:"secrets"`
	// Topics are topic selectors (exact or URI templates) filtering the
	// updates; empty: all.
	Topics []string `toml:"topics"`
	// Private includes private updates.
	Private bool `toml:"private"`
	// Subscriptions adds subscription.started and .ended events.
	Subscriptions bool     `toml:"subscriptions"`
	Timeout       Duration `toml:"timeout"`
	MaxAttempts   int      `toml:"max-attempts"`
}

// Policy is one [[policy]]: rules for the topics Match matches.
type Policy struct {
	Name string `toml:"name"`
	// Match is the topic (Type "exact", the default) or an absolute URL
	// Pattern (Type "urlpattern").
	Match string `toml:"match"`
	Type  string `toml:"type"`
	// Anonymous: nil or true allows subscribers without a token.
	Anonymous   *bool `toml:"anonymous"`
	RequireHook bool  `toml:"require-hook"`
	// Latest makes its topics latest-state: a subscriber without a cursor
	// first gets the last Latest updates of each (0: off).
	Latest int `toml:"latest"`
	// Keep retains only the last Keep updates of each of its topics in
	// the history (0: the store's history bound alone).
	Keep int `toml:"keep"`
	// MaxAge drops its topics' updates older than this from the history
	// (0: the store's own max age alone).
	MaxAge Duration `toml:"max-age"`
}

// MaxKeep bounds Policy.Keep.
const MaxKeep = 1_000_000

// Duration is a TOML string such as "1.5s" or "2m".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (such as \"2s\" or \"1m30s\")", b)
	}
	if v < 0 {
		return fmt.Errorf("%q: a duration here cannot be negative", b)
	}
	d.Duration = v
	return nil
}

// Load reads and parses the file at path.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxFileBytes+1)); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if buf.Len() > MaxFileBytes {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrInvalid, path, MaxFileBytes)
	}
	return Parse(path, buf.Bytes())
}

// Parse parses a configuration file's content; name is used in errors.
func Parse(name string, data []byte) (*File, error) {
	f := &File{name: name, data: data}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if pe.LastKey != "" {
				msg = pe.LastKey + ": " + msg
			}
			return nil, fmt.Errorf("%w: %s:%d: %s", ErrInvalid, name, pe.Position.Line, msg)
		}
		// Type mismatches come as "toml: line N (last key "k"): …".
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, name, strings.TrimPrefix(err.Error(), "toml: "))
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return nil, f.Errorf([]string(k), "unknown key (known here: %s)", known(k))
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return f, nil
}

// known lists the keys allowed in the table holding k.
func known(k toml.Key) string {
	switch {
	case len(k) == 1:
		return "serve, issuer, auth-hook, webhook, policy"
	case k[0] == "policy":
		return "name, match, type, anonymous, require-hook, latest, keep, max-age"
	case k[0] == "webhook":
		return "name, url, secrets, topics, private, subscriptions, timeout, max-attempts"
	case k[0] == "issuer":
		return "id, alg, keys, publisher-keys, subscriber-keys, jwks"
	case k[0] == "auth-hook":
		return "url, subscribe, publish, timeout, concurrency, forward-headers, forward-cookies, private-topics, publish-topics, max-cache-ttl, cache-entries, max-payload-bytes, max-response-bytes, retry-after"
	}
	return "none"
}

// check refuses what decodes but means nothing.
func (f *File) check() error {
	seen := map[string]bool{}
	for i, is := range f.Issuers {
		at := []string{"issuer", strconv.Itoa(i), "id"}
		if is.ID == "" {
			return f.Errorf(at, "an issuer needs its id (the tokens' iss)")
		}
		if seen[is.ID] {
			return f.Errorf(at, "issuer %q appears twice", is.ID)
		}
		seen[is.ID] = true
		if len(is.Keys)+len(is.PublisherKeys)+len(is.SubscriberKeys) == 0 && is.JWKS == "" {
			return f.Errorf(at, "issuer %q has no keys and no jwks: no token of it could be verified", is.ID)
		}
	}
	names := map[string]bool{}
	for i, w := range f.Webhooks {
		at := []string{"webhook", strconv.Itoa(i)}
		switch {
		case w.Name == "":
			return f.Errorf(append(at, "name"), "a webhook needs a name (its queue in the outbox)")
		case names[w.Name]:
			return f.Errorf(append(at, "name"), "webhook %q appears twice", w.Name)
		case w.URL == "":
			return f.Errorf(append(at, "url"), "url is required")
		case !httpURL(w.URL):
			return f.Errorf(append(at, "url"), "%q: want http(s)://HOST/PATH", w.URL)
		case len(w.Secrets) == 0:
			return f.Errorf(append(at, "secrets"), "a secret is required: receivers verify every delivery with it")
		case w.MaxAttempts < 0:
			return f.Errorf(append(at, "max-attempts"), "cannot be negative")
		}
		names[w.Name] = true
	}
	for i, p := range f.Policies {
		at := []string{"policy", strconv.Itoa(i)}
		switch {
		case p.Match == "":
			return f.Errorf(append(at, "match"), "a policy needs the topic or pattern it is for")
		case p.Type != "" && p.Type != "exact" && p.Type != "urlpattern":
			return f.Errorf(append(at, "type"), "%q: use exact or urlpattern", p.Type)
		case p.Latest < 0 || p.Latest > 1000:
			return f.Errorf(append(at, "latest"), "%d: want 1 to 1000 updates (0: off)", p.Latest)
		case p.Keep < 0 || p.Keep > MaxKeep:
			return f.Errorf(append(at, "keep"), "%d: want 1 to %d updates per topic (0: the history's bound)", p.Keep, MaxKeep)
		case p.MaxAge.Duration < 0:
			return f.Errorf(append(at, "max-age"), "%v: cannot be negative", p.MaxAge.Duration)
		case p.Keep > 0 && p.Latest > p.Keep:
			return f.Errorf(append(at, "latest"), "latest = %d but keep = %d: the last %d cannot be given from a history of %d", p.Latest, p.Keep, p.Latest, p.Keep)
		case (p.Anonymous == nil || *p.Anonymous) && !p.RequireHook && p.Latest == 0 && p.Keep == 0 && p.MaxAge.Duration == 0:
			return f.Errorf(at, "policy %q does nothing: set anonymous = false, require-hook = true, latest = N, keep = N or max-age", p.Match)
		case p.RequireHook && f.AuthHook == nil:
			return f.Errorf(append(at, "require-hook"), "there is no [auth-hook] to require")
		}
	}
	if h := f.AuthHook; h != nil {
		if h.URL == "" {
			return f.Errorf([]string{"auth-hook"}, "url is required")
		}
		if (h.Subscribe != nil && !*h.Subscribe) && !h.Publish {
			return f.Errorf([]string{"auth-hook", "subscribe"}, "the hook is called for neither subscribe nor publish")
		}
		for _, n := range []struct {
			key string
			v   int
		}{{"concurrency", h.Concurrency}, {"cache-entries", h.CacheEntries}, {"max-payload-bytes", h.MaxPayloadBytes}, {"max-response-bytes", h.MaxResponseBytes}} {
			if n.v < 0 {
				return f.Errorf([]string{"auth-hook", n.key}, "cannot be negative")
			}
		}
	}
	return nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// ServeKeys returns the [serve] keys in a stable order.
func (f *File) ServeKeys() []string {
	keys := make([]string, 0, len(f.Serve))
	for k := range f.Serve {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Errorf is an error about the value at key (such as {"serve", "addr"} or
// {"issuer", "1", "id"}), naming the file and the key's line.
func (f *File) Errorf(key []string, format string, args ...any) error {
	where := f.name
	if line := f.Line(key); line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	return fmt.Errorf("%w: %s: %s: %s", ErrInvalid, where, dotted(key), fmt.Sprintf(format, args...))
}

func dotted(key []string) string {
	var b strings.Builder
	for i, k := range key {
		if _, err := strconv.Atoi(k); err == nil {
			b.WriteString("[" + k + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(k)
	}
	return b.String()
}

// Line finds the line of key in the file (0 when it cannot tell). An
// array-of-tables index ("issuer", "1", …) counts [[issuer]] headers.
// It reads the file line by line, as it is written in practice (one key
// per line, tables as headers); the decoder has already accepted it.
func (f *File) Line(key []string) int {
	loose := true // a key without indices (as the decoder names unknown keys) matches any
	for _, k := range key {
		if _, err := strconv.Atoi(k); err == nil {
			loose = false
		}
	}
	var table []string // the current header's key, indices included
	counts := map[string]int{}
	best, bestLen := 0, -1 // the longest header that contains key
	prefixOf := func(key, table []string) bool {
		if loose {
			table = dropIndices(table)
		}
		return len(table) <= len(key) && equal(key[:len(table)], table)
	}
	header := func(i int) {
		if prefixOf(key, table) && len(table) > bestLen {
			best, bestLen = i+1, len(table)
		}
	}
	for i, raw := range strings.Split(string(f.data), "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case strings.HasPrefix(line, "[["):
			name := strings.Trim(strings.SplitN(line, "]]", 2)[0], "[ ")
			n := counts[name]
			counts[name] = n + 1
			table = append(splitKey(name), strconv.Itoa(n))
			header(i)
			if n == 0 && equal(key, dropIndices(table)) {
				return i + 1
			}
		case strings.HasPrefix(line, "["):
			table = splitKey(strings.Trim(strings.SplitN(line, "]", 2)[0], "[ "))
			header(i)
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			k, _, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			full := append(append([]string(nil), table...), splitKey(k)...)
			if prefixOf(key, full) {
				return i + 1
			}
		}
	}
	return best
}

func splitKey(s string) []string {
	parts := strings.Split(strings.TrimSpace(s), ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return parts
}

func dropIndices(key []string) []string {
	var out []string
	for _, k := range key {
		if _, err := strconv.Atoi(k); err != nil {
			out = append(out, k)
		}
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
