// Package netio owns the gateway's network layer: gnet event loops for the
// plaintext path, the hand-off of a connection to a goroutine running the
// standard crypto/tls, connection limits and deadlines, the per-loop token
// verifier, and the transport-neutral Session interface that every protocol
// implements.
//
// netio must never know any protocol's bytes: it moves bytes between sockets
// and Sessions and acts on the Action a Session returns.
package netio
