//go:build race

package rest

// raceEnabled: sync.Pool drops items on purpose under the race detector, so
// allocation counts are meaningless.
const raceEnabled = true
