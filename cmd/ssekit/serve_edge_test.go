package main

import (
	"flag"
	"net"
	"strings"
	"testing"

	"github.com/ssekit/sse/internal/systemd"
)

func TestEdgeResourceFromDomain(t *testing.T) {
	for _, tc := range []struct {
		addr, issuer, resource, want string
	}{
		{":443", "https://idp.example", "", "https://hub.example.com/.well-known/mercure"},
		{"0.0.0.0:8443", "https://idp.example", "", "https://hub.example.com:8443/.well-known/mercure"},
		{":443", "https://idp.example", "https://given.example/.well-known/mercure", "https://given.example/.well-known/mercure"},
		{":443", "", "", ""}, // no draft-08 issuer: no resource (--resource needs --issuer)
		{"0.0.0.0:8443 443", "https://idp.example", "", "https://hub.example.com/.well-known/mercure"},       // --https-port 443 behind a mapping
		{"0.0.0.0:8443 9443", "https://idp.example", "", "https://hub.example.com:9443/.well-known/mercure"}, // --https-port 9443
	} {
		m := &Main{}
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		cfg := m.serveFlags(fs)
		addr, httpsPort, _ := strings.Cut(tc.addr, " ")
		args := []string{"--domain", "hub.example.com", "--addr", addr}
		if httpsPort != "" {
			args = append(args, "--https-port", httpsPort)
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg.auth.issuers, cfg.auth.resource = nil, tc.resource
		if tc.issuer != "" {
			cfg.auth.issuers = issuerFlags{tc.issuer}
		}
		if err := cfg.edge.check(cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.auth.resource != tc.want {
			t.Errorf("addr %s, issuer %q: resource %q; want %q", tc.addr, tc.issuer, cfg.auth.resource, tc.want)
		}
	}
}

func TestDomainFlag(t *testing.T) {
	var d domainList
	if err := d.Set("Hub.Example.com, two.example.com"); err != nil {
		t.Fatal(err)
	}
	if d.String() != "hub.example.com,two.example.com" {
		t.Errorf("domains %q", d.String())
	}
	for _, bad := range []string{"", "1.2.3.4", "a..b", "-a.example", "a b.example", "hub.example.com:443"} {
		var d domainList
		if err := d.Set(bad); err == nil {
			t.Errorf("--domain %q accepted; want a refusal", bad)
		}
	}
}

// TestTakeActivated: of systemd's sockets, one stream socket is the hub's
// listener and one datagram socket HTTP/3's; more of either is refused
// and every socket closed.
func TestTakeActivated(t *testing.T) {
	stream := func() systemd.Socket {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return systemd.Socket{Name: "ssekit", Listener: l}
	}
	datagram := func() systemd.Socket {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return systemd.Socket{Name: "ssekit", PacketConn: pc}
	}
	named := func(s systemd.Socket, name string) systemd.Socket { s.Name = name; return s }
	var e edgeFlags
	tcp, udp, plain := stream(), datagram(), named(stream(), "http")
	ln, err := e.takeActivated([]systemd.Socket{udp, plain, tcp})
	if err != nil || ln != tcp.Listener || e.activatedUDP == nil || e.activatedUDP.PacketConn != udp.PacketConn || e.activatedHTTP != plain.Listener {
		t.Fatalf("takeActivated(datagram, http, stream) = %v, %v, udp %v, http %v; want the stream socket, the datagram one for HTTP/3, the one named http for plain HTTP", ln, err, e.activatedUDP, e.activatedHTTP)
	}
	for name, socks := range map[string][]systemd.Socket{
		"two streams":   {stream(), stream()},
		"two datagrams": {stream(), datagram(), datagram()},
		"no stream":     {datagram()},
		"two http":      {stream(), named(stream(), "http"), named(stream(), "http")},
	} {
		var e edgeFlags
		if _, err := e.takeActivated(socks); err == nil || !strings.Contains(err.Error(), "ListenDatagram=") {
			t.Errorf("%s: %v; want a refusal naming the socket unit's lines", name, err)
		}
		if err := socks[0].Close(); err == nil { // a second Close fails
			t.Errorf("%s: the sockets were left open", name)
		}
	}
}
