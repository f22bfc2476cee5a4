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
// buffer that sessions append to, and the list of its connections with their
// deadlines. gnet has no per-connection timers; OnTick asks every loop (with
// EventLoop.Execute, so the check runs on the loop) to sweep its list: a
// connection past its handshake deadline (from accept) or idle deadline
// (from its last bytes once authenticated) gets Session.LimitError and is
// closed. Connection limits (global and per source address) are checked in
// OnOpen and shared by all listeners.
//
// The same sweep re-checks the token of every authenticated session that is
// a Claimant (core.Verifier.Recheck: expiry, keyring, revocation view) and
// ends those that no longer hold with the session's Terminate words, so a
// revocation reaches idle connections within a tick (plus the revocation
// feed's delay) without an index: the check is a few tens of nanoseconds a
// session. TLS goroutines wake on the same period to do the same.
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
// TLS: on Action UpgradeTLS, or a first byte 0x16 when the protocol takes
// TLS from the first byte, the loop flushes gnet's output, duplicates the
// socket (Conn.Dup), copies the unconsumed inbound bytes, and returns
// gnet.Close: gnet closes only its own descriptor, without shutdown, so the
// socket lives on. A goroutine then runs ServeConn with crypto/tls (TLS 1.2+,
// the protocol's ALPN), the same Session, and a pooled verifier; it holds
// the connection's limiter slot until it ends.
package netio
