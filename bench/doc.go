// Package bench holds the gateway's load benchmarks (all in _test files):
// connect + authenticate + one command + close per second with 8–32
// concurrent clients, beside a raw-TCP ceiling measured in the same run;
// persistent-connection commands per second; and memory per idle
// authenticated connection with many held. They run against the real
// heliosd, started as a subprocess on free ports with a temporary data
// directory, and tokens minted from its keyring.
//
// Each protocol adds one file (bench/<protocol>_test.go) that registers a
// Target: how to run one handshake, how to open a persistent client, and
// which heliosd listener it talks to. The harness (harness_test.go) does the
// rest. Run with:
//
//	go test ./bench -run '^$' -bench . -benchtime 2s
//	HELIOS_BENCH_IDLE=10000 go test ./bench -run TestIdleMemory -v
//
// The package is never needed by the daemon.
package bench
