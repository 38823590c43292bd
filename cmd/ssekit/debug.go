package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/ssekit/sse/debugger"
)

const debugUsage = `Usage: ssekit debug [--addr 127.0.0.1:7070] [--open]

Serves the SSE debugger: a page to build a request (method, URL, query
parameters, headers, JSON body, bearer token), send it, and watch the
events arrive live with their timing, reconnections, raw bytes and, for LLM
streaming APIs (OpenAI chat and Responses, Anthropic, Gemini, or any JSON
stream with the merge rules of its LLM rules tab) the answer assembled from
its deltas with its usage and timing, and for MCP streams their JSON-RPC
messages (its MCP session option opens the session first). NDJSON
responses show one event a line.
The requests are made by ssekit, not by the browser: any method, header and
body, and no CORS limits.

Because it makes requests for whoever calls it, every call to its API needs
the token in the address printed at start: random, or read from the
SSEKIT_DEBUG_TOKEN environment variable or from --token-file (never from
the command line, which every local user can read with ps). The page takes
the token out of its address once loaded; --open gives the browser a
one-time code instead of the token.

It answers only requests whose Host is a loopback name (localhost,
127.0.0.1, [::1]) or one given with --allow-host, so that a web page whose
name is pointed at this machine (DNS rebinding) cannot use it; its API
refuses calls from other origins (403) and its page cannot be framed. It
listens on loopback by default; bind it elsewhere only on a network you
trust.

Mercure hub mode: --hub URL with --topic SELECTOR (or --match-urlpattern)
opens the page on that subscription, in the hub's draft (--draft, asked
from the hub by default): match= / match_urlpattern= for draft-08 (Mercure
1.0), topic= for draft-07, with a token --jwt-key signs (an at+jwt access
token of --issuer for draft-08) in the page's bearer field.
`

func runDebug(ctx context.Context, m *Main, args []string) error {
	fs := flag.NewFlagSet("debug", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:7070", "listen on `HOST:PORT` (port 0 picks a free one)")
	open := fs.Bool("open", false, "open the page in the default browser")
	tokenFile := fs.String("token-file", "", "read the API token from `FILE` (default: SSEKIT_DEBUG_TOKEN, or random)")
	var allowHosts []string
	fs.Func("allow-host", "also answer requests for Host `NAME` (repeatable), e.g. the machine's name when --addr is not loopback", func(s string) error {
		if s == "" || strings.ContainsAny(s, ":/ ") {
			return fmt.Errorf("want a host name without port, got %q", s)
		}
		allowHosts = append(allowHosts, s)
		return nil
	})
	fs.Func("token", "removed: a token on the command line is visible to every local user (ps); use SSEKIT_DEBUG_TOKEN or --token-file", func(string) error {
		return errors.New("a token on the command line is visible to every local user (ps); use SSEKIT_DEBUG_TOKEN or --token-file")
	})
	insecure := fs.Bool("insecure", false, "do not verify TLS certificates of watched servers")
	var dm debugMercure
	addDebugMercureFlags(fs, &dm)
	rest, err := m.parseFlags(fs, debugUsage, args)
	if err != nil {
		return err
	}
	fragment, err := dm.fragment(ctx, m, fs, *insecure)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("takes no arguments, got %q", rest[0])
	}
	token := m.getenv("SSEKIT_DEBUG_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return fmt.Errorf("--token-file: %s is empty", *tokenFile)
		}
	}
	if token == "" {
		token = debugger.NewToken()
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	tcp, _ := ln.Addr().(*net.TCPAddr)
	if tcp != nil && !tcp.IP.IsLoopback() && !tcp.IP.IsUnspecified() {
		allowHosts = append(allowHosts, tcp.IP.String()) // the address asked for, which no DNS name rebinds
	}
	ui := debugger.New(debugger.Config{Token: token, HTTPClient: m.httpClient(*insecure), AllowedHosts: allowHosts})
	// The page streams end with their requests' contexts; the sessions
	// (the requests the page made through the backend) end with ui.Close.
	defer ui.Close()
	host := ln.Addr().String()
	if tcp != nil && tcp.IP.IsUnspecified() {
		host = net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	base := "http://" + host
	if tcp != nil && !tcp.IP.IsLoopback() {
		m.logf("debug", "warning: listening on %s, not loopback: anyone who has the token can make requests through this machine (pages are answered for loopback names, the address asked for and --allow-host names)", ln.Addr())
	}
	m.logf("debug", "open %s/?token=%s%s (Ctrl-C stops)", base, token, fragment)
	if *open {
		if err := openBrowser(ui.LoginURL(base) + fragment); err != nil {
			m.logf("debug", "cannot open a browser: %v", err)
		}
	}
	return serveStreams(ctx, ln, ui)
}

// openBrowser opens url in the desktop's default browser.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
