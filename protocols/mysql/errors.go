package mysql

import (
	"strconv"

	"github.com/heliosdb/auth/core"
)

// MySQL server error numbers and the SQLSTATE each is reported with (MySQL
// "Server Error Message Reference": ER_CON_COUNT_ERROR and so on).
const (
	erConCount                 = 1040 // ER_CON_COUNT_ERROR, 08004: Too many connections
	erHandshake                = 1043 // ER_HANDSHAKE_ERROR, 08S01: Bad handshake
	erDBAccessDenied           = 1044 // ER_DBACCESS_DENIED_ERROR, 42000
	erAccessDenied             = 1045 // ER_ACCESS_DENIED_ERROR, 28000
	erNoDB                     = 1046 // ER_NO_DB_ERROR, 3D000: No database selected
	erUnknownCom               = 1047 // ER_UNKNOWN_COM_ERROR, 08S01
	erBadDB                    = 1049 // ER_BAD_DB_ERROR, 42000: Unknown database
	erMalformedPacket          = 1835 // ER_MALFORMED_PACKET, HY000
	erUnknownStmtHandler       = 1243 // ER_UNKNOWN_STMT_HANDLER, HY000
	erMaxPreparedStmt          = 1461 // ER_MAX_PREPARED_STMT_COUNT_REACHED, 42000
	erEmptyQuery               = 1065 // ER_EMPTY_QUERY, 42000: Query was empty
	erTableAccessDenied        = 1142 // ER_TABLEACCESS_DENIED_ERROR, 42000
	erNetPacketTooLarge        = 1153 // ER_NET_PACKET_TOO_LARGE, 08S01
	erNetReadInterrupted       = 1159 // ER_NET_READ_INTERRUPTED, 08S01
	erNotSupportedYet          = 1235 // ER_NOT_SUPPORTED_YET, 42000
	erNotSupportedAuthMode     = 1251 // ER_NOT_SUPPORTED_AUTH_MODE, 08004
	erSecureTransportRequired  = 3159 // ER_SECURE_TRANSPORT_REQUIRED, HY000
	erClientInteractionTimeout = 4031 // ER_CLIENT_INTERACTION_TIMEOUT, HY000
)

// SQLSTATEs of the errors above (SQL standard classes; 08S01 and HY000
// are ODBC's).
const (
	stateConnectionRejected   = "08004" // the server rejected the connection
	stateCommunicationFailure = "08S01" // communication link failure
	stateInvalidAuthorization = "28000" // invalid authorization specification
	stateInvalidCatalogName   = "3D000" // no (valid) database
	stateSyntaxOrAccessRule   = "42000" // syntax error or access rule violation
	stateGeneralError         = "HY000"
)

// msgNoUpstream ends the 1235 error for a statement that only an upstream
// database could answer.
const msgNoUpstream = "this HeliosDB gateway has no upstream database configured: it authenticates tokens and answers " +
	"SELECT 1, SELECT DATABASE(), SELECT USER(), SELECT @@version_comment, SET NAMES, SET autocommit, USE, " +
	"COM_PING and SELECT * FROM helios_whoami() by itself; this statement needs an upstream MySQL server, and none is configured for this gateway"

// msgTLSRequired is the 3159 error for a plaintext connection from an
// address that must use TLS. It comes before the client sends its token.
const msgTLSRequired = "Connections using insecure transport are prohibited from your address: HeliosDB requires TLS here " +
	"(mariadb/mysql --ssl or --ssl-mode=REQUIRED, go-sql-driver tls=true, mysql2 ssl:{})"

// msgTestNoDB is the 1046 error for a statement that needs a database from
// a test token with none selected.
const msgTestNoDB = "No database selected: " + "Test tokens can only access test databases" +
	" (hdb_test_ tokens run statements only in a database created with \"test\": true; select one with USE <database>)"

// errWrongUser is the verify-style error for a user name other than default.
var errWrongUser = &core.Error{Kind: core.KindInvalid, Message: core.MsgInvalid,
	Detail: "HeliosDB tokens authenticate the user default: connect with -u default and the token as the password"}

// appendUserHost appends 'user'@'host' as MySQL quotes it in its errors.
func (s *Session) appendUserHost(dst []byte) []byte {
	dst = append(dst, '\'')
	dst = appendClean(dst, s.user)
	dst = append(dst, "'@'"...)
	dst = s.info.Remote.Addr().AppendTo(dst)
	return append(dst, '\'')
}

// appendAccessDenied appends error 1045 with the token error's reason in the
// guide's words (never the token).
func (s *Session) appendAccessDenied(dst []byte, seq byte, err error) []byte {
	dst, start := beginPacket(dst, seq)
	dst = appendERRHeader(dst, erAccessDenied, stateInvalidAuthorization)
	dst = append(dst, "Access denied for user "...)
	dst = s.appendUserHost(dst)
	if err == core.ErrMissing {
		dst = append(dst, " (using password: NO): "...)
	} else {
		dst = append(dst, " (using password: YES): "...)
	}
	dst = core.AppendError(dst, err)
	return endPacket(dst, start)
}

// appendSessionEnded appends error 1045 for an authenticated session whose
// token stopped holding (revoked, logged out everywhere, key retired,
// expired, revocation status unavailable), naming the reason in the
// guide's words; the session is closed after it. mariadb prints it as
//
//	ERROR 1045 (28000): Access denied for user 'default'@'127.0.0.1' (session ended): Authentication token has been revoked (the token was revoked)
func (s *Session) appendSessionEnded(dst []byte, seq byte, err error) []byte {
	dst, start := beginPacket(dst, seq)
	dst = appendERRHeader(dst, erAccessDenied, stateInvalidAuthorization)
	dst = append(dst, "Access denied for user "...)
	dst = s.appendUserHost(dst)
	dst = append(dst, " (session ended): "...)
	dst = core.AppendError(dst, err)
	if err == core.ErrExpired {
		dst = append(dst, " (reconnect with a new token)"...)
	}
	return endPacket(dst, start)
}

// appendCommandDenied appends error 1142 for a statement the token may not
// run, naming the statement's verb and why (the missing scope, or the
// gateway's refusal).
func (s *Session) appendCommandDenied(dst []byte, seq byte, verb string, reason *core.Error) []byte {
	dst, start := beginPacket(dst, seq)
	dst = appendERRHeader(dst, erTableAccessDenied, stateSyntaxOrAccessRule)
	dst = append(dst, verb...)
	dst = append(dst, " command denied to user "...)
	dst = s.appendUserHost(dst)
	dst = append(dst, ": "...)
	dst = append(dst, reason.Message...)
	return endPacket(dst, start)
}

// appendDBRefused appends error 1044 (42000) "Access denied for user … to
// database 'db': <reason>" — a missing scope, or a test token outside the
// test databases.
func (s *Session) appendDBRefused(dst []byte, seq byte, db []byte, reason error) []byte {
	dst, start := beginPacket(dst, seq)
	dst = appendERRHeader(dst, erDBAccessDenied, stateSyntaxOrAccessRule)
	dst = append(dst, "Access denied for user "...)
	dst = s.appendUserHost(dst)
	dst = append(dst, " to database '"...)
	dst = appendClean(dst, db)
	dst = append(dst, "': "...)
	dst = core.AppendError(dst, reason)
	return endPacket(dst, start)
}

// appendUnknownDB appends error 1049 (42000) "Unknown database 'db'" for a
// database that is not registered.
func appendUnknownDB(dst []byte, seq byte, db []byte) []byte {
	dst, start := beginPacket(dst, seq)
	dst = appendERRHeader(dst, erBadDB, stateSyntaxOrAccessRule)
	dst = append(dst, "Unknown database '"...)
	dst = appendClean(dst, db)
	dst = append(dst, '\'')
	return endPacket(dst, start)
}

// appendTooBig appends error 1153 for a packet above the phase's limit.
func appendTooBig(dst []byte, seq byte, max int) []byte {
	msg := "Got a packet bigger than 'max_allowed_packet' bytes (" + strconv.Itoa(max) + ")"
	return AppendERR(dst, seq, erNetPacketTooLarge, stateCommunicationFailure, msg)
}

// appendClean appends b, at most maxNameLen bytes of it, with control
// bytes replaced by spaces, so client input can be quoted inside an error
// message.
func appendClean(dst, b []byte) []byte {
	if len(b) > maxNameLen {
		b = b[:maxNameLen]
	}
	for _, c := range b {
		if c < ' ' || c == 0x7f {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}
