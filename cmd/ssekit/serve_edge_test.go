package main

import (
	"flag"
	"testing"
)

func TestEdgeResourceFromDomain(t *testing.T) {
	for _, tc := range []struct {
		addr, issuer, resource, want string
	}{
		{":443", "https://idp.example", "", "https://hub.example.com/.well-known/mercure"},
		{"0.0.0.0:8443", "https://idp.example", "", "https://hub.example.com:8443/.well-known/mercure"},
		{":443", "https://idp.example", "https://given.example/.well-known/mercure", "https://given.example/.well-known/mercure"},
		{":443", "", "", ""}, // no draft-08 issuer: no resource (--resource needs --issuer)
	} {
		m := &Main{}
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		cfg := m.serveFlags(fs)
		if err := fs.Parse([]string{"--domain", "hub.example.com", "--addr", tc.addr}); err != nil {
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
