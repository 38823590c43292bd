// Package compare benchmarks ssekit's wire format against
// github.com/tmaxmax/go-sse on the same streams, in one `go test -bench`
// run. It is a separate module so that the main module never depends on the
// peer; see docs/BENCHMARKS.md for the command and the figures.
package compare
