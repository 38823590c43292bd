package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

const healthUsage = `Usage: ssekit health [flags] [URL]

Asks a hub whether it is ready and exits 0 when it answers 200, 1 with the
reason otherwise: a container's HEALTHCHECK or a probe on a machine without
curl. URL defaults to http://127.0.0.1:8080/readyz.

Flags:
`

// defaultHealthURL is the readiness endpoint of a hub on its default address.
const defaultHealthURL = "http://127.0.0.1:8080/readyz"

func runHealth(ctx context.Context, m *Main, args []string) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after `DURATION`")
	rest, err := m.parseFlags(fs, healthUsage, args)
	if err != nil {
		return err
	}
	target := defaultHealthURL
	switch len(rest) {
	case 0:
	case 1:
		target = rest[0]
	default:
		return usageErrorf("takes at most one URL")
	}
	if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("want an http:// or https:// URL, got %q", target)
	}
	if *timeout <= 0 {
		return usageErrorf("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	client := m.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %v", *timeout)
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: HTTP %d", resp.StatusCode)
	}
	return nil
}
