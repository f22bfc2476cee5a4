package redis

import (
	"strconv"

	"github.com/heliosdb/auth/core"
)

// Error replies in Redis's own words. Clients classify errors by the first
// word (redis-py: WRONGPASS and NOAUTH → AuthenticationError, NOPERM →
// NoPermissionError), so HeliosDB's detail always follows Redis's text.
const (
	msgNoAuth      = "NOAUTH Authentication required."
	msgHelloNoAuth = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	msgWrongPass   = "WRONGPASS invalid username-password pair or user is disabled."
	msgNoProto     = "NOPROTO unsupported protocol version"
	// msgTLSRequired mirrors Redis's protected-mode refusal (-DENIED, then
	// a close).
	msgTLSRequired = "DENIED HeliosDB accepts tokens only over TLS from your address: reconnect with TLS (redis-cli --tls, a rediss:// URL) and use a new token if you sent this one in plaintext"
	msgNoUpstream  = "ERR no upstream database is configured: this HeliosDB gateway authenticates tokens and answers PING, ECHO, HELLO, CLIENT, SELECT, INFO, ACL WHOAMI, COMMAND and HELIOS.WHOAMI by itself; the command '"
	msgNoUpstream2 = "' needs an upstream Redis server, and none is configured for this gateway"
)

// errWrongUser is the verify-style error for a user name other than default.
var errWrongUser = &core.Error{Kind: core.KindInvalid, Message: core.MsgInvalid,
	Detail: "HeliosDB tokens authenticate the user default: use AUTH <token> or AUTH default <token>"}

// errOtherToken refuses AUTH with a second token on a connection that is
// bound to the token it first authenticated with.
var errOtherToken = &core.Error{Kind: core.KindForbidden, Message: "This connection is already authenticated with another token",
	Detail: "a Redis connection stays bound to its first token: open a new connection to use a different one"}

// msgSessionEnded follows the reason in the reply that ends a session.
const msgSessionEnded = "; the server closed this connection: reconnect with a valid token"

// appendSessionEnded appends "-NOAUTH <reason>; the server closed this
// connection …" for a session whose token stopped being valid (err is a
// *core.Error from Recheck or the gateway). It allocates nothing beyond dst.
func appendSessionEnded(dst []byte, err error) []byte {
	dst = append(dst, "-NOAUTH "...)
	dst = core.AppendError(dst, err)
	dst = append(dst, msgSessionEnded...)
	return append(dst, '\r', '\n')
}

// appendTestOnly appends the -NOPERM reply for a test token used on a
// logical database that is not registered as a test database.
func appendTestOnly(dst, cmd []byte, db int) []byte {
	dst = append(dst, "-NOPERM User default has no permissions to run the '"...)
	dst = appendClean(dst, cmd)
	dst = append(dst, "' command on database "...)
	dst = strconv.AppendInt(dst, int64(db), 10)
	return appendTestOnlyReason(dst, db)
}

// appendTestOnlyReason appends " (Test tokens can only access test
// databases: …)" and the line's end.
func appendTestOnlyReason(dst []byte, db int) []byte {
	dst = append(dst, " ("...)
	dst = append(dst, core.ErrTestDatabaseOnly.Message...)
	dst = append(dst, ": Redis database "...)
	dst = strconv.AppendInt(dst, int64(db), 10)
	dst = append(dst, " is the registered database \""...)
	dst = append(dst, databaseName(db)...)
	dst = append(dst, "\", which is not a test database)\r\n"...)
	return dst
}

// appendAuthError appends the -WRONGPASS reply for a failed AUTH or HELLO
// AUTH: Redis's text, then HeliosDB's reason in the guide's words (never the
// token).
func appendAuthError(dst []byte, err error) []byte {
	dst = append(dst, '-')
	dst = append(dst, msgWrongPass...)
	dst = append(dst, ' ')
	dst = core.AppendError(dst, err)
	return append(dst, '\r', '\n')
}

// appendNoPerm appends Redis's -NOPERM reply for a command the token's scopes
// do not allow, followed by the scope it lacks.
func appendNoPerm(dst, cmd []byte, s core.Scope) []byte {
	dst = append(dst, "-NOPERM User default has no permissions to run the '"...)
	dst = appendClean(dst, cmd)
	dst = append(dst, "' command ("...)
	dst = append(dst, core.ForbiddenError(s).Message...)
	return append(dst, ")\r\n"...)
}

// errAdmin is what the observer is told about a refused administrative
// command: a FORBIDDEN, counted and logged as a scope refusal is.
var errAdmin = &core.Error{Kind: core.KindForbidden, Message: "Administrative commands are not allowed through the HeliosDB gateway",
	Detail: "an administrative Redis command (ACL, CONFIG, SHUTDOWN, replication, …) was refused"}

// msgAdmin follows the command's name in the refusal of an administrative
// command.
const msgAdmin = "' command (administrative commands, which change the server's users, configuration or replication, " +
	"stop or stall it, or show other clients' data, are not allowed through the HeliosDB gateway, whatever the token's scopes)\r\n"

// appendAdmin appends the -NOPERM reply to an administrative command,
// naming it as Redis does: 'shutdown', or with its subcommand 'acl|setuser'.
func appendAdmin(dst, cmd []byte, args [][]byte) []byte {
	dst = append(dst, "-NOPERM User default has no permissions to run the '"...)
	dst = appendClean(dst, cmd)
	if r := lookup(cmd).admin; r != nil && (!r.all || r.named) && len(args) > 1 {
		dst = append(dst, '|')
		dst = appendLower(dst, args[1])
	}
	return append(dst, msgAdmin...)
}

// appendNoUpstream appends the error for a command that only an upstream
// database could answer.
func appendNoUpstream(dst, cmd []byte) []byte {
	dst = append(dst, '-')
	dst = append(dst, msgNoUpstream...)
	dst = appendClean(dst, cmd)
	dst = append(dst, msgNoUpstream2...)
	return append(dst, '\r', '\n')
}

// appendArgCount appends Redis's wrong-number-of-arguments error.
func appendArgCount(dst, cmd []byte) []byte {
	dst = append(dst, "-ERR wrong number of arguments for '"...)
	dst = appendClean(dst, cmd)
	return append(dst, "' command\r\n"...)
}

// appendUnknownSub appends Redis's unknown-subcommand error.
func appendUnknownSub(dst, cmd, sub []byte) []byte {
	dst = append(dst, "-ERR unknown subcommand '"...)
	dst = appendClean(dst, sub)
	dst = append(dst, "'. Try "...)
	dst = appendUpper(dst, cmd)
	return append(dst, " HELP.\r\n"...)
}

// appendProtocolError appends the reply to unparseable input; the session
// closes the connection after it, as Redis does.
func appendProtocolError(dst []byte, err error, max int, authed bool) []byte {
	dst = append(dst, "-ERR Protocol error: "...)
	dst = append(dst, err.Error()...)
	if err == errTooBig {
		dst = append(dst, " ("...)
		dst = strconv.AppendInt(dst, int64(max), 10)
		if authed {
			dst = append(dst, " bytes)"...)
		} else {
			dst = append(dst, " bytes before authentication)"...)
		}
	}
	return append(dst, '\r', '\n')
}

// maxQuoted bounds the client input quoted in an error reply.
const maxQuoted = 64

// appendClean appends b, at most maxQuoted bytes of it, with CR, LF and
// other control bytes replaced by spaces, so client input can be quoted
// inside a one-line error reply.
func appendClean(dst, b []byte) []byte {
	if len(b) > maxQuoted {
		b = b[:maxQuoted]
	}
	for _, c := range b {
		if c < ' ' || c == 0x7f {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// appendLower appends b lower-cased (cleaned as appendClean does).
func appendLower(dst, b []byte) []byte {
	start := len(dst)
	dst = appendClean(dst, b)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; c >= 'A' && c <= 'Z' {
			dst[i] = c - 'A' + 'a'
		}
	}
	return dst
}

// appendUpper appends b upper-cased (cleaned as appendClean does).
func appendUpper(dst, b []byte) []byte {
	start := len(dst)
	dst = appendClean(dst, b)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; c >= 'a' && c <= 'z' {
			dst[i] = c - 'a' + 'A'
		}
	}
	return dst
}
