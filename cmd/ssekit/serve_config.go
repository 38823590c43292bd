package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssekit/sse/authhook"
	"github.com/ssekit/sse/config"
	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
	"github.com/ssekit/sse/matcher/urlpattern"
	"github.com/ssekit/sse/policy"
	"github.com/ssekit/sse/server"
	"github.com/ssekit/sse/webhook"
)

// configFlags are --config and --check-config, and what the file says
// that flags cannot: the issuers and the auth hook.
//
// Precedence, from the strongest: a flag on the command line, its SSEKIT_*
// variable, the file's [serve] table, the flag's default.
type configFlags struct {
	path  string
	check bool

	file         *config.File
	issuers      []jwtauth.Issuer       // [[issuer]], after the --issuer flag's
	endpoints    []webhook.Endpoint     // [[webhook]]
	outbox       *webhook.Outbox        // open while serving with webhooks
	closeCluster func()                 // closes the outbox's cluster store (webhooks_cluster.go)
	policies     server.SubscribePolicy // [[policy]]; nil: none
	latest       []policy.LatestPolicy  // [[policy]] with latest = N
	latestIdx    *policy.Latest         // running while serving with latest-state topics
	retention    []hub.RetentionRule    // [[policy]] with keep or max-age
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.path, "config", "", "read the configuration `FILE` (TOML; docs/hooks.md): serve flags under [serve], [[issuer]]s, the [auth-hook]; flags and SSEKIT_* variables win over it")
	fs.BoolVar(&c.check, "check-config", false, "check the flags, variables and --config file, print what is wrong or \"config ok\", and exit without serving")
}

// applyConfigFile reads --config and sets every flag not set by the
// command line or the environment from its [serve] table; set (from
// applyEnv) gains them. Every error is a usage error (exit code 2) naming
// the file, the line and the key.
func (m *Main) applyConfigFile(fs *flag.FlagSet, set map[string]bool, cfg *serveConfig) error {
	c := &cfg.file
	if c.path == "" {
		return nil
	}
	f, err := config.Load(c.path)
	if err != nil {
		return usageErrorf("--config: %v", err)
	}
	c.file = f
	for _, name := range f.ServeKeys() {
		key := []string{"serve", name}
		if name == "config" || name == "check-config" {
			return usageErrorf("--config: %v", f.Errorf(key, "only a flag or SSEKIT_%s can say this", envName(name)[len("SSEKIT_"):]))
		}
		if fs.Lookup(name) == nil {
			return usageErrorf("--config: %v", f.Errorf(key, "no such serve flag (see 'ssekit serve --help')"))
		}
		if set[name] {
			continue // the command line or the environment wins
		}
		if err := fs.Set(name, f.Serve[name].Text); err != nil {
			return usageErrorf("--config: %v", f.Errorf(key, "%v", err))
		}
		set[name] = true
	}
	for i, is := range f.Issuers {
		ji, err := issuerOf(is)
		if err != nil {
			return usageErrorf("--config: %v", f.Errorf([]string{"issuer", fmt.Sprint(i), err.key}, "%v", err.err))
		}
		c.issuers = append(c.issuers, ji)
	}
	for i, w := range f.Webhooks {
		ep := webhook.Endpoint{Name: w.Name, URL: w.URL, Private: w.Private, Subscriptions: w.Subscriptions, Timeout: w.Timeout.Duration, MaxAttempts: w.MaxAttempts}
		for _, spec := range w.Secrets {
			secret, err := jwtauth.ReadKeyMaterial(spec)
			if err == nil && len(secret) < 16 {
				err = fmt.Errorf("a secret needs 16 bytes or more (32 random ones are best)")
			}
			if err != nil {
				return usageErrorf("--config: %v", f.Errorf([]string{"webhook", fmt.Sprint(i), "secrets"}, "%v", err))
			}
			ep.Secrets = append(ep.Secrets, secret)
		}
		for _, t := range w.Topics {
			sel, err := hub.CompileSelector(t)
			if err != nil {
				return usageErrorf("--config: %v", f.Errorf([]string{"webhook", fmt.Sprint(i), "topics"}, "%v", err))
			}
			ep.Topics = append(ep.Topics, sel)
		}
		c.endpoints = append(c.endpoints, ep)
	}
	if len(f.Policies) > 0 {
		var ps []policy.Policy
		for i, p := range f.Policies {
			name := p.Name
			if name == "" {
				name = p.Match
			}
			pol := policy.Policy{Name: name, NoAnonymous: p.Anonymous != nil && !*p.Anonymous, RequireHook: p.RequireHook}
			if p.Type == "urlpattern" {
				m, err := urlpattern.New(p.Match, "")
				if err != nil {
					return usageErrorf("--config: %v", f.Errorf([]string{"policy", fmt.Sprint(i), "match"}, "%v (an absolute URL Pattern)", err))
				}
				pol.Pattern = m
			} else {
				pol.Exact = p.Match
			}
			if p.Keep > 0 || p.MaxAge.Duration > 0 {
				match := func(topic string) bool { return topic == pol.Exact }
				if pol.Pattern != nil {
					match = pol.Pattern.Match
				}
				c.retention = append(c.retention, hub.RetentionRule{Name: name, Match: match, MaxUpdates: p.Keep, MaxAge: p.MaxAge.Duration})
			}
			if p.Latest > 0 {
				c.latest = append(c.latest, policy.LatestPolicy{Exact: pol.Exact, Pattern: pol.Pattern, N: p.Latest})
			}
			if pol.NoAnonymous || pol.RequireHook {
				ps = append(ps, pol)
			}
		}
		if len(ps) > 0 {
			set, err := policy.New(ps)
			if err != nil {
				return usageErrorf("--config: %v", err)
			}
			c.policies = set
		}
	}
	if f.AuthHook != nil {
		if _, err := authhook.New(c.authHookConfig(nil)); err != nil {
			return usageErrorf("--config: %v", f.Errorf([]string{"auth-hook", "url"}, "%v", err))
		}
	}
	return nil
}

// authHookConfig maps [auth-hook] onto authhook.Config.
func (c *configFlags) authHookConfig(reg prometheus.Registerer) authhook.Config {
	h := c.file.AuthHook
	return authhook.Config{
		URL:              h.URL,
		Timeout:          h.Timeout.Duration,
		Concurrency:      h.Concurrency,
		ForwardHeaders:   h.ForwardHeaders,
		ForwardCookies:   h.ForwardCookies,
		PrivateTopics:    h.PrivateTopics,
		PublishTopics:    h.PublishTopics,
		MaxCacheTTL:      h.MaxCacheTTL.Duration,
		CacheEntries:     h.CacheEntries,
		MaxPayloadBytes:  h.MaxPayloadBytes,
		MaxResponseBytes: h.MaxResponseBytes,
		RetryAfter:       h.RetryAfter.Duration,
		Registerer:       reg,
	}
}

// authHooks returns the hooks for subscribe and publish the file
// configures (nil for a route it leaves alone), its metrics in reg.
func (c *configFlags) authHooks(reg prometheus.Registerer) (sub, pub server.AuthHook, err error) {
	if c.file == nil || c.file.AuthHook == nil {
		return nil, nil, nil
	}
	h, err := authhook.New(c.authHookConfig(reg))
	if err != nil {
		return nil, nil, err
	}
	if s := c.file.AuthHook.Subscribe; s == nil || *s {
		sub = h
	}
	if c.file.AuthHook.Publish {
		pub = h
	}
	return sub, pub, nil
}

type keyError struct {
	key string
	err error
}

// issuerOf maps an [[issuer]] onto jwtauth.Issuer, loading its keys.
func issuerOf(is config.Issuer) (jwtauth.Issuer, *keyError) {
	out := jwtauth.Issuer{ID: is.ID}
	for _, k := range []struct {
		key   string
		specs []string
		dst   *[]*jwtauth.Key
	}{{"keys", is.Keys, &out.Keys}, {"publisher-keys", is.PublisherKeys, &out.PublisherKeys}, {"subscriber-keys", is.SubscriberKeys, &out.SubscriberKeys}} {
		for _, spec := range k.specs {
			key, err := jwtauth.LoadKey(is.Alg, spec)
			if err != nil {
				return out, &keyError{k.key, err}
			}
			*k.dst = append(*k.dst, key)
		}
	}
	switch is.JWKS {
	case "":
	case "discover":
		out.Discover = true
	default:
		out.JWKSURL = is.JWKS
	}
	return out, nil
}

// configChecked ends --check-config: everything was read and built
// without error.
func (m *Main) configChecked(cfg *serveConfig) error {
	what := "flags and environment"
	if cfg.file.path != "" {
		what = cfg.file.path
	}
	fmt.Fprintf(m.Stdout, "config ok: %s\n", what)
	return nil
}

// webhooksFile is the outbox's bolt file in the data directory.
const webhooksFile = "webhooks.db"

// openOutbox opens and starts the webhook outbox when the file has
// [[webhook]]s, and returns the hub metrics that wake it on every
// publish. Closing it is closeOutbox's.
func (c *configFlags) openOutbox(ctx context.Context, cfg *serveConfig, store hub.Store, reg prometheus.Registerer, log *slog.Logger, metrics hub.Metrics) (hub.Metrics, error) {
	if len(c.retention) > 0 {
		// Before the hub publishes, and before the latest-state index
		// reads the history, so both see the rules applied.
		rs, ok := store.(hub.RetentionStore)
		if !ok {
			return nil, fmt.Errorf("[[policy]] keep/max-age: the store %T has no per-topic retention", store)
		}
		if err := rs.SetRetention(c.retention); err != nil {
			return nil, fmt.Errorf("[[policy]] keep/max-age: %w", err)
		}
	}
	if len(c.latest) > 0 {
		l, err := policy.NewLatest(policy.LatestConfig{Store: store, Policies: c.latest, Logger: log})
		if err != nil {
			return nil, err
		}
		if err := l.Run(ctx); err != nil {
			return nil, fmt.Errorf("latest-state topics: %w", err)
		}
		c.latestIdx = l
		metrics = notifyingMetrics{metrics, l.Notify}
	}
	if len(c.endpoints) == 0 {
		return metrics, nil
	}
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	cluster, closeCluster, err := webhookCluster(ctx, cfg, store)
	if err != nil {
		return nil, err
	}
	o, err := webhook.Open(webhook.Config{Path: filepath.Join(cfg.dataDir, webhooksFile), Store: store, Endpoints: c.endpoints, Logger: log, Registerer: reg, Cluster: cluster})
	if err != nil {
		closeCluster()
		return nil, err
	}
	if err := o.Run(ctx); err != nil {
		o.Close()
		closeCluster()
		return nil, err
	}
	c.outbox, c.closeCluster = o, closeCluster
	return notifyingMetrics{metrics, o.Notify}, nil
}

// subscriptionEvents reports whether the hub must make subscription
// events: a webhook asks for them.
func (c *configFlags) subscriptionEvents() bool { return webhook.WantsSubscriptions(c.endpoints) }

// watchSubscriptions feeds the hub's subscription events to the outbox.
func (c *configFlags) watchSubscriptions(ctx context.Context, h *hub.Hub) error {
	if c.outbox == nil {
		return nil
	}
	return c.outbox.WatchSubscriptions(ctx, h)
}

func (c *configFlags) closeOutbox() {
	if c.outbox != nil {
		c.outbox.Close()
		c.closeCluster()
		c.outbox = nil
	}
}

// notifyingMetrics wakes a reader of the store (the outbox, the
// latest-state index) after every accepted publish.
type notifyingMetrics struct {
	hub.Metrics
	notify func()
}

func (n notifyingMetrics) Published(latency time.Duration) {
	n.Metrics.Published(latency)
	n.notify()
}

// latestState is the latest-state index for the server; nil: none.
func (c *configFlags) latestState() server.LatestState {
	if c.latestIdx == nil {
		return nil
	}
	return c.latestIdx
}

// adminRoutes serves the webhook outbox's admin routes (webhook.AdminPath,
// webhook.ReplayPath: live replay of dead letters, for a token granting
// webhook.AdminClaim) in front of next, when serving with webhooks.
func (c *configFlags) adminRoutes(next http.Handler, auth hub.Authenticator) http.Handler {
	if c.outbox == nil {
		return next
	}
	return webhook.AdminHandler(c.outbox, auth, next)
}
