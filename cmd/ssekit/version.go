package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

const versionUsage = `Usage: ssekit version

Prints the version of ssekit (the module version it was built from, as
"go install …@v1.2.3" records it, or "(devel)" for a build from a checkout)
and of the Go toolchain.
`

func runVersion(ctx context.Context, m *Main, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	rest, err := m.parseFlags(fs, versionUsage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("takes no arguments")
	}
	_, err = fmt.Fprintf(m.Stdout, "ssekit %s %s\n", moduleVersion(), runtime.Version())
	return err
}

// moduleVersion is the version of the main module the binary was built from.
func moduleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" {
		return "(devel)"
	}
	return info.Main.Version
}
