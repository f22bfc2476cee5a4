// Package mongodb is the gateway's MongoDB front end: the wire protocol
// codec (OP_MSG with kind-0 bodies, kind-1 document sequences and CRC-32C
// checksums; legacy OP_QUERY on <db>.$cmd answered with OP_REPLY), the
// connection state machine that authenticates a HeliosDB token sent as the
// password of SASL PLAIN, the command classifier that maps each command to
// the scope it needs, and the built-in responder used when no upstream
// database is configured.
//
// Why PLAIN: the gateway never holds a password verifier, so SCRAM cannot
// work; a client that tries it (the drivers' default) gets error 18 with a
// message that tells the user to add ?authMechanism=PLAIN&tls=true to the
// URI. Before authentication only hello, isMaster, ping and buildInfo are
// answered (monitoring connections never authenticate); the hello reply
// carries no topologyVersion, so drivers keep polling rather than waiting
// on an awaitable hello.
//
// Bytes: BSON comes and goes through go.mongodb.org/mongo-driver/v2's
// bsoncore. Every document a client sends is validated in full
// (ValidateDocument) before any field is read: bad lengths are errors, never
// panics. Replies are appended to the transport's buffer.
//
// This package must never log or echo a token, share state with another
// protocol, or do I/O: it implements netio.Session, bytes in and bytes out.
package mongodb
