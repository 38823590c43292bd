//go:build !race

package h2serve

const raceEnabled = false
