package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"strings"

	"github.com/ssekit/sse/debugger"
)

// debugMercure is "ssekit debug"'s Mercure hub mode: --hub with --topic
// (or --match-urlpattern) opens the page on that hub's subscription, built
// in the hub's draft as "ssekit listen --topic" builds it.
type debugMercure struct {
	hub string
	ml  mercureListen
}

// addDebugMercureFlags defines the Mercure hub mode's flags on fs.
func addDebugMercureFlags(fs *flag.FlagSet, dm *debugMercure) {
	fs.StringVar(&dm.hub, "hub", "", "Mercure hub mode: open the page on a subscription to the hub at `URL` (with --topic)")
	addMercureListenFlags(fs, &dm.ml, false) // the page has a token field: none on the command line
}

// fragment returns the page's "#req=…" fragment holding the subscription
// (the page's link format), or "" without --hub.
func (dm *debugMercure) fragment(ctx context.Context, m *Main, fs *flag.FlagSet, insecure bool) (string, error) {
	if dm.hub == "" {
		if dm.ml.topics != nil || dm.ml.patterns != nil {
			return "", usageErrorf("--topic and --match-urlpattern need --hub URL")
		}
		return "", dm.ml.apply(ctx, m, fs, nil)
	}
	if err := debugger.CheckURL(dm.hub); err != nil {
		return "", usageErrorf("--hub %q is not an http:// or https:// URL", dm.hub)
	}
	if dm.ml.topics == nil && dm.ml.patterns == nil {
		return "", usageErrorf("--hub needs --topic or --match-urlpattern: the subscription to open")
	}
	spec := &debugger.RequestSpec{URL: dm.hub, Insecure: insecure}
	if err := dm.ml.apply(ctx, m, fs, spec); err != nil {
		return "", err
	}
	req := map[string]any{"method": "GET", "url": spec.URL, "headers": []any{}}
	for _, h := range spec.Headers {
		if v, ok := strings.CutPrefix(h.Value, "Bearer "); ok && h.Name == "Authorization" {
			req["bearer"] = v // the page's token field, never part of a copied link
		}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	return "#req=" + base64.RawURLEncoding.EncodeToString(b), nil
}
