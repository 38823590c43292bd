package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ssekit/sse/webhook"
)

const webhooksUsage = `Usage: ssekit webhooks [--data-dir DIR] list
       ssekit webhooks [--data-dir DIR] replay ENDPOINT

Inspects the webhook outbox of a stopped hub (DIR/webhooks.db): list
prints each endpoint's queued and dead-lettered events; replay moves an
endpoint's dead letters back to its queue, delivered in order when the
hub starts again. Refused while a hub holds the outbox.
`

func runWebhooks(ctx context.Context, m *Main, args []string) error {
	fs := flag.NewFlagSet("webhooks", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "ssekit-data", "the hub's data `DIR`")
	rest, err := m.parseFlags(fs, webhooksUsage, args)
	if err != nil {
		return err
	}
	if _, err := m.applyEnv(fs); err != nil {
		return err
	}
	path := filepath.Join(*dataDir, webhooksFile)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no webhook outbox at %s: %w", path, err)
	}
	switch {
	case len(rest) == 1 && rest[0] == "list":
		qs, err := webhook.ListFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "%-24s %10s %10s\n", "ENDPOINT", "QUEUED", "DEAD")
		for _, q := range qs {
			fmt.Fprintf(m.Stdout, "%-24s %10d %10d\n", q.Name, q.Queued, q.Dead)
		}
		return nil
	case len(rest) == 2 && rest[0] == "replay":
		n, err := webhook.ReplayFile(path, rest[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "%d dead letters of %s queued again; the hub delivers them when it starts\n", n, rest[1])
		return nil
	}
	return usageErrorf("want 'list' or 'replay ENDPOINT' (see 'ssekit webhooks --help')")
}
