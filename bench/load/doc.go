// Package load is the engine of `helios bench`: a load generator that drives
// the gateway (and, side by side, the servers a user would compare it with)
// through the real client libraries a user would — pgx for PostgreSQL,
// go-sql-driver for MySQL, mongo-driver v2 for MongoDB, go-redis v9 for
// Redis and a fasthttp client for the REST API — with one token per client.
//
// A run is a list of cells, one per protocol and workload, run one after
// another. A cell runs its endpoints (the gateway first, then each
// compared endpoint of the same protocol) interleaved in rounds — A, B, A,
// B … — so a noisy, shared machine slows each of them alike and their
// ratios hold. Workloads:
//
//   - connect: connect, authenticate, one command, close;
//   - point: a keyed read on a table, collection or key set the run
//     prepares itself;
//   - mixed: reads and writes of the same rows by a ratio;
//   - revoke-storm: sessions run while the run revokes their tokens at a
//     rate, and measures, on every node given, the time from the revocation
//     to the first refused connection and to the end of each open session.
//
// Latencies go into HDR histograms (p50, p90, p99, p99.9, max). With a rate
// (open loop) every client schedules its requests by intended start time
// and a request's latency runs from that intended time, so a stalled server
// shows as the latency its users would see instead of hiding as fewer
// requests (coordinated omission). Errors are counted by kind, never
// dropped. A Result is what a run measured; WriteReport turns it into a
// Markdown report with PNG and SVG plots.
package load
