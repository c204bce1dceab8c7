// Package testnet holds helpers shared by the tests of several packages:
// loopback network fixtures, file limits, polling, the CPU-time metric of
// the micro-benchmarks. It is imported by _test.go files and the load tool.
package testnet

import "time"

// ConnectProbe is how long a connect to an address that never answers is
// given: long enough to tell "no answer" from a slow loopback handshake.
const ConnectProbe = 500 * time.Millisecond
