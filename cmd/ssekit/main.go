// Command ssekit is the Server-Sent Events toolkit: a hub that publishes
// events to subscribers, a debugger for any SSE endpoint, and the demo from
// the article the project grew out of.
//
// Usage:
//
//	ssekit <command> [flags] [arguments]
//
// Run "ssekit help" for the list of commands and "ssekit <command> --help"
// for one command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ssekit/sse/debugger/term"
)

// Exit codes shared by every command.
const (
	exitOK          = 0
	exitFailure     = 1   // the command failed; stderr says why in one line
	exitUsage       = 2   // bad command line
	exitTimeout     = 124 // a --timeout expired (as timeout(1))
	exitInterrupted = 130 // SIGINT or SIGTERM (as a shell reports 128+SIGINT)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := &Main{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
	}
	code := m.Exit(m.Run(ctx, os.Args[1:]))
	stop()
	os.Exit(code)
}

// Main is the ssekit program with everything it touches injected, so that
// tests run any command in-process and read what it printed.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// Getenv reads the environment. Nil means an empty environment.
	Getenv func(key string) string

	// HTTPClient makes the requests of commands that are HTTP clients
	// (listen). Nil means a client with no overall timeout; tests pass the
	// client of an httptest TLS server.
	HTTPClient *http.Client

	// Now tells the time shown in output. Nil means time.Now.
	Now func() time.Time
}

// A command is one subcommand: "ssekit <name> …".
type command struct {
	name    string
	summary string // one line for "ssekit help"
	run     func(ctx context.Context, m *Main, args []string) error
}

// commands lists the subcommands in the order "ssekit help" shows them.
// Adding one is a file that defines its run function, and a line here.
func commands() []command {
	return []command{
		{"serve", "run the hub: Mercure-protocol publish/subscribe with replay and auth", runServe},
		{"publish", "publish an update to a hub and print its id", runPublish},
		{"token", "mint a JWT for a hub: the topics it may publish to and subscribe to", runToken},
		{"listen", "watch any SSE endpoint live (the SSE curl)", runListen},
		{"debug", "the SSE debugger in a browser: build requests, watch events, LLM answers", runDebug},
		{"lint", "check an SSE endpoint for mistakes and risks (headers, ids, heartbeats, buffering)", runLint},
		{"replay", "serve a recorded session (listen --record, the debugger's export) as an SSE endpoint", runReplay},
		{"mock", "serve event streams from a script: scripted faults and reconnections for testing clients", runMock},
		{"expect", "assert on a live SSE stream for CI: events, counts, ids, gaps, resumption, lint; JUnit and JSON reports", runExpect},
		{"demo", "the article's example: a stream of sentences and the page that shows them", runDemo},
		{"bench", "load-test a Mercure hub: loss, latency, the hub's memory and CPU", runBench},
		{"webhooks", "list or replay the dead letters of a stopped hub's webhook outbox", runWebhooks},
		{"health", "ask a hub whether it is ready (a container's health check)", runHealth},
		{"version", "print the version", runVersion},
	}
}

// Run runs the command that args (without the program name) name. Its error
// says what went wrong in one line; Exit turns it into an exit code.
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		m.printUsage(m.Stderr)
		return errSilentUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			// "ssekit help listen" is "ssekit listen --help".
			return m.Run(ctx, []string{args[1], "--help"})
		}
		m.printUsage(m.Stdout)
		return nil
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			if err := c.run(ctx, m, args[1:]); err != nil {
				return &commandError{c.name, err}
			}
			return nil
		}
	}
	return usageErrorf("unknown command %q; run 'ssekit help' for the list", name)
}

func (m *Main) printUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString("ssekit is the Server-Sent Events toolkit.\n\nUsage:\n\n\tssekit <command> [flags] [arguments]\n\nCommands:\n\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "\t%-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'ssekit <command> --help' for a command's flags.\n")
	io.WriteString(w, b.String())
}

// Exit reports err on stderr, in one line ("ssekit listen: …"), and returns
// the exit code for it.
func (m *Main) Exit(err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	if errors.Is(err, errSilentUsage) {
		return exitUsage
	}
	if errors.Is(err, context.Canceled) {
		return exitInterrupted // the user asked to stop: nothing to report
	}
	prefix := "ssekit: "
	var cmdErr *commandError
	if errors.As(err, &cmdErr) {
		prefix = "ssekit " + cmdErr.name + ": "
		err = cmdErr.err
	}
	fmt.Fprintf(m.Stderr, "%s%s\n", prefix, term.Sanitize(oneLine(err.Error()))) // the error may quote a server
	var (
		usage *usageError
		exit  *exitError
	)
	switch {
	case errors.As(err, &usage):
		return exitUsage
	case errors.As(err, &exit):
		return exit.code
	default:
		return exitFailure
	}
}

// commandError is the failure of a command; it is reported with the
// command's name.
type commandError struct {
	name string
	err  error
}

func (e *commandError) Error() string { return e.name + ": " + e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// errSilentUsage ends a run with the usage exit code after the usage text
// was printed.
var errSilentUsage = errors.New("usage")

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// exitError is a failure with its own exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// oneLine makes s a single line, so that every failure is one line of
// stderr whatever a server put in its error.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

func (m *Main) getenv(key string) string {
	if m.Getenv == nil {
		return ""
	}
	return m.Getenv(key)
}

func (m *Main) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

// errHelp ends a run with exit code 0 after "--help" printed the usage.
var errHelp = flag.ErrHelp

// parseFlags parses a command's flags. Flags may come before or after the
// positional arguments, as in curl ("--" ends the flags). "-h"/"--help"
// prints usage and the flags to stdout and returns errHelp; a bad flag
// returns a usageError.
func (m *Main) parseFlags(fs *flag.FlagSet, usage string, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				io.WriteString(m.Stdout, usage)
				io.WriteString(m.Stdout, flagDefaults(fs))
				return nil, errHelp
			}
			return nil, usageErrorf("%v (see 'ssekit %s --help')", err, fs.Name())
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// flagDefaults formats the flags as "-X METHOD" for one-letter names and
// "--name VALUE" for the others, which is how the help and README write them.
func flagDefaults(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		fmt.Fprintf(&b, "  %s%s", dash, f.Name)
		if arg != "" {
			fmt.Fprintf(&b, " %s", arg)
		}
		fmt.Fprintf(&b, "\n    \t%s", strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	return b.String()
}
