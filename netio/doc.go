// Package netio owns the gateway's network layer: gnet event loops for the
// plaintext path, the hand-off of a connection to a goroutine running the
// standard crypto/tls, connection limits and deadlines, the per-loop token
// verifier, the metrics Observer, and the transport-neutral Session interface
// that every protocol implements.
//
// netio must never know any protocol's bytes: it moves bytes between sockets
// and Sessions and acts on the Action a Session returns.
//
// # Design
//
// Serve starts one gnet engine per Listener (multicore, SO_REUSEADDR, a
// ticker; SO_REUSEPORT on a fixed port, so that every loop accepts on its
// own socket, after a plain bind probe that keeps a second daemon from
// sharing the port). Each event loop owns a loopState: an Env with its own
// core.Verifier (the BLAKE3 hashers are per loop, never shared), an output
// buffer that sessions append to, the list of its connections with their
// deadlines, and its session index (below). gnet has no per-connection timers; OnTick asks every loop (with
// EventLoop.Execute, so the check runs on the loop) to sweep its list: a
// connection past its handshake deadline (from accept) or idle deadline
// (from its last bytes once authenticated) gets Session.LimitError and is
// closed. Connection limits (global and per source address) are checked in
// OnOpen and shared by all listeners; a tenth of the global cap is kept for
// addresses holding fewer than 8 connections, so that a flood from a few
// addresses cannot lock everyone out, and a refused connection is answered
// in its protocol's words, by a LateRefuser in reply to the client's first
// request within a short deadline (limits.go).
//
// # Admission
//
// Every protocol admits a token through Env.Admit, with the protocol's
// Admission (its core.Policy and core.UsageRecorder): verify, IP allowlist,
// the test-database rule for a database named at authentication, the
// observer (given the claims only when the token's MAC verified,
// core.Claims.Verified), and the usage record on success. Claims cached
// from an earlier admission (MySQL's fast authentication) go through
// Env.AdmitClaims: a re-check as a fresh verification would, then the same
// steps. So the policy, and what a failure may log, are decided in one
// place.
//
// # Open sessions: revocation and expiry
//
// Each loop indexes its authenticated sessions (Session.Claims) by token
// id, account and key id (maps to sets whose members record their
// positions, so adding and removing cost O(1) even in a key id's set of
// every session; entries are added when a session authenticates and removed
// when it closes or is handed to TLS, the only moments the index
// allocates: about 200 ns and one allocation a session, BenchmarkIndex*). TLS goroutines register in one
// gateway-wide index behind a mutex. Gateway.Revoke (the daemon subscribes
// it to its revocation feed through Config.Subscribe) queues the
// revocation on every loop — a mutex-guarded pair of swapped slices; a loop
// whose queue was empty gets one drain task through gnet's lock-free task
// queue, which wakes its poller — and wakes each TLS goroutine it names by
// moving its socket's read deadline into the past. The loop (or goroutine)
// looks the revocation up in its index, confirms each hit with
// core.Verifier.Recheck (so a logout-all ends only tokens issued before its
// epoch), writes Terminate's words and closes. Finding the sessions costs
// map lookups, never a scan; the delay from Revoke to the client reading
// the termination is a fraction of a millisecond (TestRevokeLatency).
//
// Expiry: an authenticated session's deadline is the sooner of its idle
// deadline and its token's expiry, so the deadline check ends an expired
// session (with Terminate and core.ErrExpired) within a tick, and a TLS
// goroutine wakes at the expiry. Config.SessionExpiry "keep" turns this
// off: the session then lives until it is idle, closed or revoked, and
// Env.Recheck ignores the expiry for it.
//
// A safety sweep re-checks every authenticated session against the
// revocation view every Config.Sweep (default 10s), and Gateway.RecheckAll
// does so at once: for what reaches a node without a Revocation (a snapshot
// reload, a feed gone stale that fails closed). It costs one Recheck, tens
// of nanoseconds, per session per Sweep.
//
// PROXY protocol: connections from Config.ProxyFrom (load balancers) must
// start with a version 2 header (netio/proxyproto); the loop consumes it
// before the session sees a byte and puts the client's address in ConnInfo,
// so PlaintextOK and the per-address limit apply to the client, not to the
// balancer.
//
// Byte ownership: the slice a session gets in Handle comes from gnet's Peek
// and is valid only during the call. The output buffer belongs to the loop.
//
// Framing: gnet reads at most 64 KiB at a time, so a larger message reaches
// Handle over several reads; the session consumes nothing until it is
// whole, and the loop discards only what was consumed (gnet's Discard(0)
// would drop the whole inbound buffer: the first read of a large message
// was once lost that way and its continuation framed as a new message). A
// session that implements Awaiter tells the size of the message it waits
// for, and the loop calls Handle again only once that much is buffered, so
// a message costs one parse and one copy whatever the number of reads; the
// idle deadline still moves with every read.
//
// TLS: on Action UpgradeTLS, or a first byte 0x16 when the protocol takes
// TLS from the first byte, the loop flushes gnet's output, duplicates the
// socket (Conn.Dup), copies the unconsumed inbound bytes, and returns
// gnet.Close: gnet closes only its own descriptor, without shutdown, so the
// socket lives on. A goroutine then runs ServeConn with crypto/tls (TLS 1.2+,
// the protocol's ALPN), the same Session, and a pooled verifier; it holds
// the connection's limiter slot until it ends.
//
// Offload: the same hand-off without the TLS handshake. A session returns
// Offload before a step too expensive for an event loop (MySQL's RSA-2048
// decryption, about 1 ms, which stalled every other connection of its loop
// during an RSA flood); the goroutine runs ServeConn in plaintext with the
// carried bytes, the same deadlines and the goroutine revocation index, and
// sets ConnInfo.Offloaded, where Offload is a Continue.
//
// # Backends
//
// A proxying session on an event loop keeps its server connection on the
// same loop (backend.go): the protocol dials, or takes from its pool, on a
// goroutine and hands the connection to Link.Attach, which registers it
// with gnet's EventLoop.Enroll on the client's loop; the server's bytes
// then reach the protocol's BackendHandler there, and what it returns goes
// to the client like a Handle's output. Link.Do brings a goroutine's
// result (a pool error) back to the loop. Idle server connections are
// parked on their loop by key (Backend.Park, Link.Take) and closed if their
// server speaks or hangs up; Reclaim detaches a parked one for a client
// waiting elsewhere. Backpressure both ways (pause.go): a backend whose
// client has more than 1 MiB waiting to go out, or a client whose backend
// has, is taken off the poller (socket duplicated, gnet's descriptor
// closed, unconsumed bytes carried) and registered again once the other
// side is below 256 KiB, so a slow reader or a fast writer never grows the
// gateway's buffers without bound.
package netio
