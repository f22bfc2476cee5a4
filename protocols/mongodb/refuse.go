package mongodb

import "github.com/heliosdb/auth/netio"

var _ netio.LateRefuser = (*Session)(nil)

// msgTooManyConnections answers the first request of a connection over the
// gateway's connection limits.
const msgTooManyConnections = "connection refused because too many open connections: the server is at its connection limit, try again later"

// RefuseLate makes the session refuse the connection (netio.LateRefuser).
// mongod closes a connection over maxIncomingConnections without a word,
// and drivers then report only a closed connection; a MongoDB client speaks
// first and reads only replies, so here the client's first request (the
// driver's hello or isMaster) is answered with error 402 ResourceExhausted
// and the reason, in the form the request used, and the connection closed.
// Drivers show it as the handshake's error ("(ResourceExhausted) connection
// refused because too many open connections …"); 402 is no state-change or
// retryable code, so the driver neither marks the server as stepping down
// nor retries the operation on it.
func (s *Session) RefuseLate() { s.refuseConn = true }
