// Package natsnode runs a NATS server with JetStream inside the process:
// one node of the cluster that carries a hub's updates, so that a small
// hub cluster ("ssekit serve --cluster") needs nothing but ssekit
// binaries, and tests run a real NATS server (or three) with no outside
// process.
//
// It imports the NATS server; package natsjs, the store, imports only the
// client, so a hub using an external NATS cluster does not link the
// server.
package natsnode

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultClusterName is the NATS cluster's name when Config.ClusterName is
// empty.
const DefaultClusterName = "ssekit"

// ErrNotReady is returned by Start when the server does not accept
// connections in time (wrapped with the reason).
var ErrNotReady = errors.New("natsnode: server not ready")

// Config configures a node. The zero value is a single node listening for
// clients on 127.0.0.1:4222 with JetStream's data in a temporary directory
// chosen by the server; set StoreDir for data that outlives the process.
type Config struct {
	// Name is the server's name, unique in the cluster (JetStream places
	// replicas by it). Empty means the cluster address, or the client
	// address for a single node.
	Name string

	// Listen is the HOST:PORT clients (hub nodes) connect to. Empty means
	// 127.0.0.1:4222; port 0 picks a free port.
	Listen string

	// StoreDir is where JetStream keeps the streams. Empty means a
	// directory under the system's temporary directory.
	StoreDir string

	// ClusterListen is the HOST:PORT other nodes' routes connect to.
	// Empty means a single node, no cluster; port 0 picks a free port.
	ClusterListen string
	// ClusterName names the cluster; every node must have the same. Empty
	// means DefaultClusterName.
	ClusterName string
	// Peers are the other nodes' cluster addresses (HOST:PORT, or
	// nats-route://HOST:PORT). Listing this node too is harmless, so every
	// node can be given the same list. Nodes learn of each other's peers,
	// so each needs only one that is up.
	Peers []string

	// User and Password, when Password is set, are what every client must
	// log in with. Empty means clients need no credentials, which only a
	// test should want: any local process could read every update.
	User, Password string
	// RouteUser and RoutePassword, when RoutePassword is set, are what
	// every route (another node) must log in with; this node presents
	// them to its peers too, so every node needs the same.
	RouteUser, RoutePassword string
	// RouteTLS, when set, runs the routes over TLS with this configuration,
	// both those accepted and those dialled: give it Certificates, and
	// RootCAs plus ClientCAs with ClientAuth tls.RequireAndVerifyClientCert
	// so that each side verifies the other.
	RouteTLS *tls.Config

	// Logger receives the server's notices, warnings and errors (debug and
	// trace are off). Nil means none.
	Logger *slog.Logger

	// ReadyTimeout is how long Start waits for the server to accept
	// connections. Zero means 10 seconds.
	ReadyTimeout time.Duration
}

// Node is a running embedded NATS server.
type Node struct {
	srv *server.Server
}

// Start starts the node and waits until it accepts client connections.
// JetStream in a cluster becomes usable a little later, once a quorum of
// nodes has met; clients retry meanwhile (natsjs.Open does).
func Start(cfg Config) (*Node, error) {
	opts := &server.Options{
		ServerName: cfg.Name,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
	}
	var err error
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:4222"
	}
	if opts.Host, opts.Port, err = hostPort(listen); err != nil {
		return nil, fmt.Errorf("natsnode: listen address: %w", err)
	}
	if cfg.Password != "" {
		opts.Username, opts.Password = cfg.User, cfg.Password
	}
	if cfg.ClusterListen != "" {
		opts.Cluster.Name = cfg.ClusterName
		if opts.Cluster.Name == "" {
			opts.Cluster.Name = DefaultClusterName
		}
		if opts.Cluster.Host, opts.Cluster.Port, err = hostPort(cfg.ClusterListen); err != nil {
			return nil, fmt.Errorf("natsnode: cluster address: %w", err)
		}
		if cfg.RoutePassword != "" {
			opts.Cluster.Username, opts.Cluster.Password = cfg.RouteUser, cfg.RoutePassword
		}
		if cfg.RouteTLS != nil {
			opts.Cluster.TLSConfig = cfg.RouteTLS
			opts.Cluster.TLSTimeout = 2 // seconds
		}
		var routes []string
		for _, p := range cfg.Peers {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if !strings.Contains(p, "://") {
				p = "nats-route://" + p
			}
			u, err := url.Parse(p)
			if err != nil {
				return nil, fmt.Errorf("natsnode: peer %q: %w", p, err)
			}
			if cfg.RoutePassword != "" && u.User == nil {
				u.User = url.UserPassword(cfg.RouteUser, cfg.RoutePassword)
			}
			routes = append(routes, u.String())
		}
		// RoutesFromStr, even of "" for the first node (no peers yet): the
		// server then counts routes as configured and starts JetStream in
		// clustered mode, waiting for the peers that will route to it.
		opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		if opts.ServerName == "" && opts.Cluster.Port > 0 {
			opts.ServerName = net.JoinHostPort(opts.Cluster.Host, strconv.Itoa(opts.Cluster.Port))
		}
	} else if len(cfg.Peers) > 0 {
		return nil, fmt.Errorf("natsnode: peers without a cluster address")
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsnode: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLoggerV2(slogLogger{cfg.Logger}, false, false, false)
	}
	srv.Start()
	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("%w: not accepting connections on %s after %v", ErrNotReady, listen, timeout)
	}
	return &Node{srv: srv}, nil
}

// hostPort splits HOST:PORT; port 0 becomes -1, the server's "pick one".
func hostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	if p == 0 {
		p = -1
	}
	return host, p, nil
}

// ClientURL is the nats:// URL clients connect to.
func (n *Node) ClientURL() string { return n.srv.ClientURL() }

// ClusterAddr is the address other nodes route to ("" for a single node).
func (n *Node) ClusterAddr() string {
	if a := n.srv.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Name is the server's name.
func (n *Node) Name() string { return n.srv.Name() }

// JetStreamReady reports whether this node's JetStream is up and, in a
// cluster, has a meta leader it is current with.
func (n *Node) JetStreamReady() bool {
	if !n.srv.JetStreamEnabled() {
		return false
	}
	if !n.srv.JetStreamIsClustered() {
		return true
	}
	return n.srv.JetStreamIsCurrent()
}

// Shutdown stops the server and waits until it has.
func (n *Node) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// slogLogger gives the server's log lines to a slog.Logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Noticef(format string, v ...any) { s.l.Info("nats: " + fmt.Sprintf(format, v...)) }
func (s slogLogger) Warnf(format string, v ...any)   { s.l.Warn("nats: " + fmt.Sprintf(format, v...)) }
func (s slogLogger) Fatalf(format string, v ...any)  { s.l.Error("nats: " + fmt.Sprintf(format, v...)) }
func (s slogLogger) Errorf(format string, v ...any)  { s.l.Error("nats: " + fmt.Sprintf(format, v...)) }
func (s slogLogger) Debugf(format string, v ...any)  { s.l.Debug("nats: " + fmt.Sprintf(format, v...)) }
func (s slogLogger) Tracef(format string, v ...any)  { s.l.Debug("nats: " + fmt.Sprintf(format, v...)) }
