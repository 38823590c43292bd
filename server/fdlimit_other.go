//go:build !unix

package server

// openFileLimit is 0 where there is no RLIMIT_NOFILE: DefaultMaxSubscribers
// then falls back to a fixed number.
func openFileLimit() uint64 { return 0 }
