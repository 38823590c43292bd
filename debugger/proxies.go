package debugger

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// A proxyKind is a proxy or platform recognised from the headers it adds,
// with the section of docs/deploying.md that sets it up for streams.
type proxyKind struct {
	Name, Recipe string
	// IdleLimit is its default idle timeout, when it has a well-known one.
	IdleLimit time.Duration
}

// knownProxies are tried in order; the first whose signature matches wins.
var knownProxies = []struct {
	kind  proxyKind
	match func(h http.Header) bool
}{
	{proxyKind{"Cloudflare", `"Behind Cloudflare"`, 100 * time.Second}, func(h http.Header) bool {
		return h.Get("Cf-Ray") != "" || strings.EqualFold(h.Get("Server"), "cloudflare")
	}},
	{proxyKind{"AWS ALB", `"Behind AWS ALB"`, 60 * time.Second}, func(h http.Header) bool {
		return strings.HasPrefix(strings.ToLower(h.Get("Server")), "awselb")
	}},
	{proxyKind{"Caddy", `"Behind Caddy"`, 0}, func(h http.Header) bool {
		return strings.EqualFold(h.Get("Server"), "Caddy")
	}},
	{proxyKind{"nginx", `"Behind nginx" (ingress-nginx: "Behind Kubernetes ingress-nginx")`, 60 * time.Second}, func(h http.Header) bool {
		return strings.HasPrefix(strings.ToLower(h.Get("Server")), "nginx") || strings.HasPrefix(strings.ToLower(h.Get("Server")), "openresty")
	}},
	{proxyKind{"Varnish", `"Behind a load balancer"`, 0}, func(h http.Header) bool {
		return h.Get("X-Varnish") != "" || strings.Contains(strings.ToLower(h.Get("Via")), "varnish")
	}},
	{proxyKind{"a proxy (Via: header)", `"Behind a load balancer"`, 0}, func(h http.Header) bool {
		return h.Get("Via") != ""
	}},
}

// detectProxy names the proxy the response came through, or reports
// false. HAProxy and most load balancers add nothing to a response: no
// finding then does not mean no proxy.
func detectProxy(h http.Header) (proxyKind, bool) {
	for _, p := range knownProxies {
		if p.match(h) {
			return p.kind, true
		}
	}
	return proxyKind{}, false
}

// proxyFindings names the recipe when the stream shows what proxies do
// to streams: buffering (bursts), or an end after a silence (an idle
// timeout). endSilence is how long the stream had been silent when it
// ended (0 when it did not end).
func (l *linter) proxyFindings(endSilence time.Duration) {
	r := l.rep
	p, known := detectProxy(r.Header)
	if known {
		r.Proxy = p.Name
	}
	recipe := func() string {
		if known {
			return "docs/deploying.md, " + p.Recipe
		}
		return `docs/deploying.md: the recipe of the proxy in front ("Behind nginx", "Behind Caddy", "Behind HAProxy", "Behind Cloudflare", "Behind AWS ALB", "Behind Kubernetes ingress-nginx")`
	}
	via := ""
	if known {
		via = " through " + p.Name
	}
	if r.Has("buffering") {
		r.add(SeverityWarning, "proxy-buffers", "turn the proxy's response buffering off for the stream: "+recipe(),
			"events arrive in bursts%s: a proxy (or the server) buffers the stream", via)
	}
	if endSilence >= l.cfg.Heartbeat {
		limit := ""
		if known && p.IdleLimit > 0 {
			limit = fmt.Sprintf(" (%s cuts idle connections after %s by default)", p.Name, roundDur(p.IdleLimit))
		}
		r.add(SeverityWarning, "proxy-idle-cut", fmt.Sprintf("send heartbeats more often than the idle timeout, or raise it: %s", recipe()),
			"the stream ended%s after %s of silence: the signature of an idle timeout%s", via, roundDur(endSilence), limit)
	}
	if known && !r.Has("proxy-buffers") && !r.Has("proxy-idle-cut") {
		r.add(SeverityInfo, "proxy", "check its settings for streams: "+recipe(),
			"the response came through %s", p.Name)
	}
}
