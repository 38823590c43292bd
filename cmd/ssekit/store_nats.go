package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/store/natsjs"
	"github.com/ssekit/sse/store/natsjs/natsnode"
)

// natsFlags are the flags of the NATS JetStream store and of the embedded
// NATS server --cluster runs.
type natsFlags struct {
	cluster       bool
	listen        string // the embedded server's client address
	clusterListen string
	clusterPeers  string
	clusterName   string
	stream        string
	replicas      int
}

func (f *natsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.cluster, "cluster", false, "run an embedded NATS server (JetStream, data in --data-dir/nats) joining --cluster-peers, and use it as the store: a hub cluster of ssekit binaries alone")
	fs.StringVar(&f.listen, "nats-listen", "127.0.0.1:4222", "with --cluster: the embedded NATS server's client address `HOST:PORT`")
	fs.StringVar(&f.clusterListen, "cluster-listen", "", "with --cluster: the embedded NATS server's route address `HOST:PORT` for the other nodes (empty: a single node)")
	fs.StringVar(&f.clusterPeers, "cluster-peers", "", "with --cluster: the other nodes' route addresses, `HOST:PORT,…` (may include this node's)")
	fs.StringVar(&f.clusterName, "cluster-name", natsnode.DefaultClusterName, "with --cluster: the NATS cluster's `NAME`, the same on every node")
	fs.StringVar(&f.stream, "nats-stream", natsjs.DefaultStream, "the JetStream stream holding the updates (`NAME`), for --store nats://… and --cluster")
	fs.IntVar(&f.replicas, "nats-replicas", 0, "the stream's replicas (`N`, 1 to 5; 0: 3 with --cluster-peers, else 1)")
}

// isNATSURL reports whether --store names a NATS server: nats://….
func isNATSURL(store string) bool { return strings.HasPrefix(store, "nats://") }

// natsURLs gives every comma-separated server in --store a scheme, so
// "nats://a:4222,b:4222" names two servers.
func natsURLs(store string) string {
	parts := strings.Split(store, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// openNATSStore opens the JetStream store on the servers --store names,
// or, with --cluster, starts the embedded NATS node first and uses it.
// --history-size, --history-bytes and --history-age are the stream's
// limits.
func openNATSStore(cfg *serveConfig, log *slog.Logger) (hub.Store, error) {
	f := &cfg.nats
	if f.cluster && cfg.store != "bolt" && !isNATSURL(cfg.store) {
		return nil, usageErrorf("--cluster runs its own NATS store: leave --store out")
	}
	if !f.cluster && (f.clusterListen != "" || f.clusterPeers != "") {
		return nil, usageErrorf("--cluster-listen and --cluster-peers need --cluster")
	}
	scfg := natsjs.Config{
		URL:         natsURLs(cfg.store),
		Stream:      f.stream,
		Replicas:    f.replicas,
		HistorySize: cfg.historySize,
		MaxBytes:    cfg.historyBytes,
		MaxAge:      cfg.historyAge,
		Logger:      log,
	}
	var node *natsnode.Node
	if f.cluster {
		dir := filepath.Join(cfg.dataDir, "nats")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		var peers []string
		if f.clusterPeers != "" {
			peers = strings.Split(f.clusterPeers, ",")
		}
		var err error
		node, err = natsnode.Start(natsnode.Config{
			Listen:        f.listen,
			StoreDir:      dir,
			ClusterListen: f.clusterListen,
			ClusterName:   f.clusterName,
			Peers:         peers,
			Logger:        log.With("component", "nats"),
		})
		if err != nil {
			return nil, err
		}
		scfg.URL = node.ClientURL()
		if scfg.Replicas == 0 && len(peers) > 0 {
			scfg.Replicas = 3
		}
		log.Info("embedded NATS server running", "client", node.ClientURL(), "cluster", node.ClusterAddr(), "peers", peers)
	}
	s, err := natsjs.Open(context.Background(), scfg)
	if err != nil {
		if node != nil {
			node.Shutdown()
		}
		if errors.Is(err, natsjs.ErrInvalidConfig) {
			return nil, usageErrorf("%v", err)
		}
		return nil, err
	}
	if node == nil {
		return s, nil
	}
	return &clusterStore{Store: s, node: node}, nil
}

// clusterStore is the store of a --cluster hub: closing it also stops the
// embedded NATS server, after the store's connection to it.
type clusterStore struct {
	*natsjs.Store
	node *natsnode.Node
}

func (c *clusterStore) Close(ctx context.Context) error {
	err := c.Store.Close(ctx)
	if !errors.Is(err, hub.ErrStoreClosed) {
		c.node.Shutdown()
	}
	return err
}
