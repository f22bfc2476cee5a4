// Package protocols holds the gateway's wire protocol front ends, one
// package each (postgres, mysql, mongodb, redis; rest is the REST API), and
// no code of its own: this file says what every front end has in common,
// and how to add one.
//
// A front end turns one client's bytes into a token check and answers, and
// nothing else. It implements netio.Protocol and netio.Session: the
// transport (netio) owns sockets, TLS, limits and deadlines and calls the
// session with bytes; the session appends its replies to the transport's
// buffer and returns an Action. It never does I/O, never shares state with
// another protocol, never keeps a token after verifying it, and never puts
// a token into a reply or a log.
//
// # Files
//
// Every protocol package has the same files in the same roles, so that
// whoever knows one finds their way in all:
//
//   - doc.go: the package's design (authentication flow, policy, open
//     sessions, errors) and the list of its files.
//   - protocol.go: Protocol (the netio.Protocol: Name, NewSession,
//     TLSFirstByte, ALPN), its Options, and New.
//   - session.go: Session, the connection state machine, with the rest of
//     netio.Session (Start, Handle, Authenticated, LimitError, Claims,
//     Terminate) and Awaiting.
//   - codec.go: the wire format: decoders that check sizes before reading
//     and return "need more bytes" for an incomplete message, and
//     append-style encoders. Numbers are named after the protocol's
//     specification (AuthenticationCleartextPassword, COM_QUERY, OP_MSG).
//   - classify.go: which scope each statement or command needs.
//   - errors.go: token, scope, limit and protocol errors in the protocol's
//     own codes and words.
//   - responder.go: the dispatch of an authenticated client's commands and
//     the built-in commands answered without an upstream database.
//
// A file with one job of its own may sit beside them (mysql's cache.go,
// redis's crossdb.go, mongodb's bson.go, refuse.go for LateRefuser); the
// package's doc.go lists it.
//
// # The netio.Session contract
//
//   - Start appends what the server says first (MySQL's greeting), or
//     returns out unchanged when the client speaks first.
//   - Handle consumes whole messages from the front of in and returns how
//     many bytes it consumed (0: not a whole message yet), the output and an
//     Action: Continue, UpgradeTLS (an in-protocol TLS request: the
//     unconsumed bytes are carried into TLS), Close, or Offload (for a rare
//     step that would stall the event loop, such as an RSA decryption). It
//     must bound what it waits for: a length above env.MaxPreAuthMessage
//     before authentication, or env.MaxMessage after, gets the protocol's
//     error and Close. in is valid only during the call; copy what you keep.
//   - Authenticated reports that the token was accepted (the transport then
//     switches from the handshake deadline to the idle deadline).
//   - LimitError appends the protocol's error for a limit the transport
//     enforced (too many connections, handshake or idle timeout, message
//     size); the transport closes after writing it.
//   - Claims returns the accepted token's claims, nil before; they never
//     change once returned (a second token on the same connection is
//     refused: netio.Admission.OtherToken). The transport indexes sessions
//     by them, so revocation ends them without a scan.
//   - Terminate appends the protocol's words for a session ended from
//     outside (revoked, logged out, key retired, expired, node failing
//     closed); a protocol with no unsolicited message returns out unchanged
//     and the close is the signal.
//   - Optional: Awaiter (Awaiting: the size of the message Handle stopped
//     at, so a large message is not re-parsed on every read; never
//     overstate it) and LateRefuser (RefuseLate: refuse a connection over
//     the limits in reply to the client's first request, in the protocol's
//     words, for clients that speak first or negotiate TLS first).
//
// # Admission and errors
//
// A token is admitted through the gateway's one path, netio.Env.Admit
// (AdmitClaims for claims cached from an earlier verification), with the
// protocol's netio.Admission (Options.Policy and Options.Usage): it
// verifies the token, checks its IP allowlist against the client's address
// and, for a test token, the database, records last_used, and tells the
// observer. Never verify or check policy by hand. Before that, a plaintext
// client whose ConnInfo.PlaintextOK is false is refused before it sends its
// token, where the protocol allows (env.Observer.Refused with
// netio.OutcomeTLSRequired). Every command of an authenticated session
// first re-checks the token with netio.Env.Recheck (allocation-free) and
// ends the session with Terminate's words when it fails. Then the command's
// scope (classify.go) is checked with core.Claims.Require, and a test
// token's database with core.AllowDatabase.
//
// Errors speak the protocol: a refusal is the error a client of that
// protocol already understands (SQLSTATE 28P01 or 42501, MySQL 1045 or
// 1142, Redis -WRONGPASS or -NOPERM, MongoDB code 18 or 13), and its message
// carries the seed's words, core.Error's Message: a missing scope reads
// "Token does not have required scope: <scope>" (core.ForbiddenError), so a
// user sees the same sentence on every protocol.
//
// # Adding a protocol
//
//  1. protocols/<name>/ with the files above, its doc.go first.
//  2. Its listener in internal/listeners.All (protocol name, --<x>-listen
//     flag, default address, title): heliosd's flags, TOML key, HELIOS_*
//     variable, --help, certificate host names and the test harness
//     (internal/testdaemon) all come from that list.
//  3. cmd/heliosd/proto_<name>.go: registerProtocol(protocolFactory{name,
//     build}) from an init function; name is the Protocol's Name and the
//     listener's Protocol (TestListenersMatchProtocols holds them together).
//  4. Tests: unit tests beside the code (the session driven with a
//     netio.Env; allocation tests for the per-command path); a fuzz target
//     for the decoders in fuzz/<name> with a seed corpus; end-to-end tests
//     in e2e/ with a real client or driver against the real heliosd
//     (testdaemon), plaintext and TLS, good, bad, expired, revoked and
//     scoped tokens; and the protocol's case in e2e/framing_test.go (large
//     messages split across reads and at every 4 KiB boundary).
//  5. Docs: the package's doc.go, the protocol in README.md, and the
//     daemon's doc comment (cmd/heliosd) where it lists the front ends.
package protocols
