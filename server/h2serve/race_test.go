//go:build race

package h2serve

// raceEnabled: the race detector drops a quarter of sync.Pool's Puts, so
// allocation counts are not asserted under it.
const raceEnabled = true
