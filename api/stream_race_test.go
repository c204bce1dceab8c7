//go:build race

package api

// Under the race detector the echo and the cuts run about ten times slower
// on two cores: fewer bytes and cuts prove the same.
const (
	echoBytes  = 8 << 20
	resumeCuts = 50
)
