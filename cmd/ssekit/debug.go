package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os/exec"
	"runtime"

	"github.com/ssekit/sse/debugger"
)

const debugUsage = `Usage: ssekit debug [--addr 127.0.0.1:7070] [--open]

Serves the SSE debugger: a page to build a request (method, URL, query
parameters, headers, JSON body, bearer token), send it, and watch the
events arrive live with their timing, reconnections, raw bytes and, for LLM
streaming APIs (OpenAI, Anthropic), the answer assembled from its deltas.
The requests are made by ssekit, not by the browser: any method, header and
body, and no CORS limits.

Because it makes requests for whoever calls it, every call to its API needs
the random token printed at start (part of the printed address). It listens
on loopback by default; bind it elsewhere only on a network you trust.
`

func runDebug(ctx context.Context, m *Main, args []string) error {
	fs := flag.NewFlagSet("debug", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:7070", "listen on `HOST:PORT` (port 0 picks a free one)")
	open := fs.Bool("open", false, "open the page in the default browser")
	token := fs.String("token", "", "the API `TOKEN` (default: random; env SSEKIT_DEBUG_TOKEN)")
	insecure := fs.Bool("insecure", false, "do not verify TLS certificates of watched servers")
	rest, err := m.parseFlags(fs, debugUsage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("takes no arguments, got %q", rest[0])
	}
	if *token == "" {
		*token = m.getenv("SSEKIT_DEBUG_TOKEN")
	}
	if *token == "" {
		*token = debugger.NewToken()
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	ui := debugger.New(debugger.Config{Token: *token, HTTPClient: m.httpClient(*insecure)})
	defer ui.Close()
	host := ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host = net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	page := fmt.Sprintf("http://%s/?token=%s", host, *token)
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		m.logf("debug", "warning: listening on %s, not loopback: anyone who has the token can make requests through this machine", ln.Addr())
	}
	m.logf("debug", "open %s (Ctrl-C stops)", page)
	if *open {
		if err := openBrowser(page); err != nil {
			m.logf("debug", "cannot open a browser: %v", err)
		}
	}

	// The page streams end with their requests' contexts; the sessions
	// (the requests the page made through the backend) end with ui.Close.
	defer ui.Close()
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
