package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/ssekit/sse/jwtauth"
)

const issuerSecret = "an-issuer-secret-of-32-bytes-or-more!"

// TestServeAuthFlags reads serve's draft-08 flags as the command line
// gives them: repeated --issuer flags with and without keys, the hub URL
// and resource defaults, and the refusals, each with its reason.
func TestServeAuthFlags(t *testing.T) {
	shared, err := jwtauth.NewKey("HS256", []byte(issuerSecret))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		args             []string
		addr             string
		issuers          []string // ID:keys:jwks
		hubURL, resource string
		authServers      string
		err              string
	}{
		{"Bare", []string{"--issuer", "https://a"}, "127.0.0.1:8080", []string{"https://a:1:"}, "http://127.0.0.1:8080/.well-known/mercure", "http://127.0.0.1:8080/.well-known/mercure", "", ""},
		{"Several", []string{"--issuer", "https://a=" + issuerSecret, "--issuer", "https://b=jwks:https://b/jwks.json", "--issuer", "https://c=discover", "--issuer", "https://a=x" + issuerSecret},
			"0.0.0.0:8080", []string{"https://a:2:", "https://b:0:https://b/jwks.json", "https://c:0:discover"}, "", "http://0.0.0.0:8080/.well-known/mercure", "https://b https://c", ""},
		{"ResourceIsHubURL", []string{"--issuer", "https://localhost", "--resource", "https://localhost/.well-known/mercure"}, "[::]:80", []string{"https://localhost:1:"}, "https://localhost/.well-known/mercure", "https://localhost/.well-known/mercure", "", ""},
		{"HubURLIsResource", []string{"--hub-url", "https://h.example/.well-known/mercure"}, ":8080", nil, "https://h.example/.well-known/mercure", "https://h.example/.well-known/mercure", "", ""},
		{"ResourceNotAHubURL", []string{"--resource", "urn:hub"}, "127.0.0.1:0", nil, "", "urn:hub", "", ""},
		{"BareWithJWKS", []string{"--issuer", "https://a", "--issuer-jwks", "discover"}, "127.0.0.1:1", []string{"https://a:1:discover"}, "http://127.0.0.1:1/.well-known/mercure", "http://127.0.0.1:1/.well-known/mercure", "https://a", ""},
		{"JWKSWithoutBareIssuer", []string{"--issuer", "https://a=discover", "--issuer-jwks", "discover"}, "127.0.0.1:1", nil, "", "", "", "--issuer-jwks needs a bare --issuer"},
		{"JWKSTwoBare", []string{"--issuer", "https://a", "--issuer", "https://b", "--issuer-jwks", "https://k"}, "127.0.0.1:1", nil, "", "", "", "several bare --issuer"},
		{"TwoKeySets", []string{"--issuer", "https://a=discover", "--issuer", "https://a=jwks:https://k"}, "127.0.0.1:1", nil, "", "", "", "one key set per issuer"},
		{"EmptyIssuer", []string{"--issuer", "=x"}, "127.0.0.1:1", nil, "", "", "", "empty issuer identifier"},
		{"EmptyKey", []string{"--issuer", "https://a="}, "127.0.0.1:1", nil, "", "", "", "empty key"},
		{"BadKey", []string{"--issuer", "https://a=short"}, "127.0.0.1:1", nil, "", "", "", "issuer \"https://a\": key 1"},
		{"BadJWKSURL", []string{"--issuer", "https://a=jwks:file:///etc/passwd"}, "127.0.0.1:1", nil, "", "", "", "not an http(s) URL"},
		{"HubURLOtherPath", []string{"--hub-url", "https://h/hub"}, "127.0.0.1:1", nil, "", "", "", "the path must be /.well-known/mercure"},
		{"HubURLRelative", []string{"--hub-url", "/.well-known/mercure"}, "127.0.0.1:1", nil, "", "", "", "absolute http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a authFlags
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			a.register(fs)
			err := fs.Parse(tt.args)
			var issuers []jwtauth.Issuer
			if err == nil {
				issuers, err = a.issuerList(shared, shared, "http", tt.addr)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v; want one line with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, is := range issuers {
				src := is.JWKSURL
				if is.Discover {
					src = "discover"
				}
				got = append(got, is.ID+":"+itoa(len(is.Keys)+len(is.PublisherKeys))+":"+src)
			}
			if strings.Join(got, " ") != strings.Join(tt.issuers, " ") {
				t.Errorf("issuers %q; want %q", got, tt.issuers)
			}
			if a.effectiveHubURL != tt.hubURL || a.effectiveResource != tt.resource || strings.Join(a.authServers, " ") != tt.authServers {
				t.Errorf("hub URL %q, resource %q, servers %q; want %q, %q, %q", a.effectiveHubURL, a.effectiveResource, a.authServers, tt.hubURL, tt.resource, tt.authServers)
			}
		})
	}
}

func itoa(n int) string { return string(rune('0' + n)) }
