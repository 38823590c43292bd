package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/ssekit/sse/debugger"
)

// requestFlags are the flags that describe a request, shared by the
// commands that make one (listen, lint and the test tools): they fill a
// debugger.RequestSpec, which builds the request.
type requestFlags struct {
	spec    debugger.RequestSpec
	data    string // -d as given: a body, @file, or @- for stdin
	hasData bool
}

// addRequestFlags defines -X, -H, -d, --last-event-id and --insecure on fs.
func addRequestFlags(fs *flag.FlagSet, rf *requestFlags) {
	fs.StringVar(&rf.spec.Method, "X", "", "request `METHOD` (default GET, or POST with -d)")
	fs.Func("H", "request header `'Name: value'` (repeatable)", func(s string) error {
		h, err := debugger.ParseHeader(s)
		if err != nil {
			return fmt.Errorf("want 'Name: value', got %q", s) // the flag package names the flag
		}
		rf.spec.Headers = append(rf.spec.Headers, h)
		return nil
	})
	fs.Func("d", "request `BODY`; @file reads it from a file, @- from stdin (implies POST)", func(s string) error {
		rf.data, rf.hasData = s, true
		return nil
	})
	fs.StringVar(&rf.spec.LastEventID, "last-event-id", "", "send Last-Event-ID: `ID` on the first request, to resume a stream")
	fs.BoolVar(&rf.spec.Insecure, "insecure", false, "do not verify the server's TLS certificate")
}

// requestSpec completes the spec after the flags are parsed: the URL (the
// command's one argument, see streamURL) and the body that -d names.
func (m *Main) requestSpec(rf *requestFlags, url string) (*debugger.RequestSpec, error) {
	rf.spec.URL = url
	if rf.hasData {
		if err := rf.spec.SetBody(rf.data, m.Stdin); err != nil {
			return nil, err
		}
	}
	return &rf.spec, nil
}

// streamURL returns the one argument of the command cmd (listen, lint): the
// http:// or https:// URL of the stream.
func streamURL(cmd string, args []string) (string, error) {
	if len(args) != 1 {
		return "", usageErrorf("want exactly one URL, got %d arguments (see 'ssekit %s --help')", len(args), cmd)
	}
	if err := debugger.CheckURL(args[0]); err != nil {
		return "", usageErrorf("%q is not an http:// or https:// URL", args[0])
	}
	return args[0], nil
}

// httpClient is m.HTTPClient (a plain one when nil), without TLS
// certificate verification for --insecure.
func (m *Main) httpClient(insecure bool) *http.Client {
	c := m.HTTPClient
	if c == nil {
		c = &http.Client{}
	}
	if !insecure {
		return c
	}
	return debugger.InsecureClient(c)
}

// colorEnabled decides --color: "auto" colours a terminal unless NO_COLOR
// is set (no-color.org) or TERM is dumb.
func (m *Main) colorEnabled(when string) (bool, error) {
	switch when {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		return isTerminal(m.Stdout) && m.getenv("NO_COLOR") == "" && m.getenv("TERM") != "dumb", nil
	}
	return false, usageErrorf("--color must be auto, always or never, not %q", when)
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
