package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/jwtauth"
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
	// secret is --cluster-secret: a value or @FILE; empty means the file
	// clusterSecretFile in --data-dir, created on first start.
	secret                                string
	routeTLSCert, routeTLSKey, routeTLSCA string
}

// clusterSecretFile is where a --cluster node without --cluster-secret
// keeps the secret it generated, for the operator to give to the others.
const clusterSecretFile = "cluster-secret"

// minClusterSecret is the shortest cluster secret accepted, as for HMAC
// keys: the NATS passwords are derived from it.
const minClusterSecret = 32

func (f *natsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.cluster, "cluster", false, "run an embedded NATS server (JetStream, data in --data-dir/nats) joining --cluster-peers, and use it as the store: a hub cluster of ssekit binaries alone")
	fs.StringVar(&f.listen, "nats-listen", "127.0.0.1:4222", "with --cluster: the embedded NATS server's client address `HOST:PORT`")
	fs.StringVar(&f.clusterListen, "cluster-listen", "", "with --cluster: the embedded NATS server's route address `HOST:PORT` for the other nodes (empty: a single node)")
	fs.StringVar(&f.clusterPeers, "cluster-peers", "", "with --cluster: the other nodes' route addresses, `HOST:PORT,…` (may include this node's)")
	fs.StringVar(&f.clusterName, "cluster-name", natsnode.DefaultClusterName, "with --cluster: the NATS cluster's `NAME`, the same on every node")
	fs.StringVar(&f.stream, "nats-stream", natsjs.DefaultStream, "the JetStream stream holding the updates (`NAME`), for --store nats://… and --cluster")
	fs.IntVar(&f.replicas, "nats-replicas", 0, "the stream's replicas (`N`, 1 to 5; 0: 3 with --cluster-peers, else 1)")
	fs.StringVar(&f.secret, "cluster-secret", "", "with --cluster: the `SECRET` (32 bytes or more, or @FILE) every node shares; the embedded NATS server's client and route passwords derive from it (default: --data-dir/"+clusterSecretFile+", generated on first start)")
	fs.StringVar(&f.routeTLSCert, "cluster-tls-cert", "", "with --cluster: run the routes between nodes over TLS with this certificate `FILE` (with --cluster-tls-key and --cluster-tls-ca)")
	fs.StringVar(&f.routeTLSKey, "cluster-tls-key", "", "with --cluster: the private key `FILE` of --cluster-tls-cert")
	fs.StringVar(&f.routeTLSCA, "cluster-tls-ca", "", "with --cluster: the CA certificates `FILE` peers' route certificates must be signed by")
}

// clusterCredentials are the embedded NATS server's logins, derived from
// the cluster secret so that every node given the same secret agrees,
// and distinct per port so that neither password is the secret itself.
type clusterCredentials struct {
	clientUser, clientPassword string
	routeUser, routePassword   string
}

func deriveClusterCredentials(secret []byte) clusterCredentials {
	derive := func(purpose string) string {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte("ssekit cluster " + purpose))
		return hex.EncodeToString(mac.Sum(nil))
	}
	return clusterCredentials{
		clientUser: "ssekit", clientPassword: derive("client"),
		routeUser: "ssekit-route", routePassword: derive("route"),
	}
}

// clusterSecret reads --cluster-secret or, without it, the secret file
// in the data directory, generating it on the first start; generated
// reports that it was just created.
func clusterSecret(f *natsFlags, dataDir string) (secret []byte, path string, generated bool, err error) {
	if f.secret != "" {
		secret, err = jwtauth.ReadKeyMaterial(f.secret)
		if err != nil {
			return nil, "", false, usageErrorf("--cluster-secret: %v", err)
		}
	} else {
		path = filepath.Join(dataDir, clusterSecretFile)
		secret, generated, err = jwtauth.LoadOrCreateSecret(path)
		if err != nil {
			return nil, "", false, fmt.Errorf("cluster secret: %w", err)
		}
	}
	if len(secret) < minClusterSecret {
		return nil, "", false, usageErrorf("--cluster-secret: %d bytes, want at least %d", len(secret), minClusterSecret)
	}
	return secret, path, generated, nil
}

// routeTLS builds the routes' TLS configuration from the --cluster-tls-*
// flags: nil when none is set; each node presents its certificate and
// requires its peers' to be signed by the CA, both ways.
func routeTLS(f *natsFlags) (*tls.Config, error) {
	if f.routeTLSCert == "" && f.routeTLSKey == "" && f.routeTLSCA == "" {
		return nil, nil
	}
	if f.routeTLSCert == "" || f.routeTLSKey == "" || f.routeTLSCA == "" {
		return nil, usageErrorf("--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together")
	}
	cert, err := tls.LoadX509KeyPair(f.routeTLSCert, f.routeTLSKey)
	if err != nil {
		return nil, usageErrorf("--cluster-tls-cert: %v", err)
	}
	caPEM, err := os.ReadFile(f.routeTLSCA)
	if err != nil {
		return nil, usageErrorf("--cluster-tls-ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, usageErrorf("--cluster-tls-ca: %s holds no PEM certificate", f.routeTLSCA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
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
	if !f.cluster && (f.clusterListen != "" || f.clusterPeers != "" || f.secret != "" ||
		f.routeTLSCert != "" || f.routeTLSKey != "" || f.routeTLSCA != "") {
		return nil, usageErrorf("--cluster-listen, --cluster-peers, --cluster-secret and --cluster-tls-* need --cluster")
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
		secret, secretPath, generated, err := clusterSecret(f, cfg.dataDir)
		if err != nil {
			return nil, err
		}
		if generated {
			log.Warn("generated the cluster secret: give it to every other node with --cluster-secret @FILE (a copy of this file)", "file", secretPath)
		}
		tlsCfg, err := routeTLS(f)
		if err != nil {
			return nil, err
		}
		creds := deriveClusterCredentials(secret)
		node, err = natsnode.Start(natsnode.Config{
			Listen:        f.listen,
			StoreDir:      dir,
			ClusterListen: f.clusterListen,
			ClusterName:   f.clusterName,
			Peers:         peers,
			User:          creds.clientUser,
			Password:      creds.clientPassword,
			RouteUser:     creds.routeUser,
			RoutePassword: creds.routePassword,
			RouteTLS:      tlsCfg,
			Logger:        log.With("component", "nats"),
		})
		if err != nil {
			return nil, err
		}
		scfg.URL = node.ClientURL()
		scfg.Options = append(scfg.Options, nats.UserInfo(creds.clientUser, creds.clientPassword))
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
