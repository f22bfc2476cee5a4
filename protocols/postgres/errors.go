package postgres

import (
	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// SQLSTATE codes this front end sends.
const (
	codeInvalidPassword             = "28P01" // invalid_password: bad, expired or revoked token
	codeInvalidAuthSpec             = "28000" // invalid_authorization_specification: TLS required
	codeInsufficientPriv            = "42501" // insufficient_privilege: missing scope
	codeProtocolViolation           = "08P01"
	codeFeatureNotSupported         = "0A000"
	codeTooManyConnections          = "53300"
	codeQueryCanceled               = "57014"
	codeIdleSessionTimeout          = "57P05"
	codeProgramLimit                = "54000"
	codeSyntaxError                 = "42601"
	codeUndefinedObject             = "42704"
	codeUndefinedStatement          = "26000"
	codeUndefinedCursor             = "34000"
	codeCannotConnectNow            = "57P03" // revocation status unavailable: try again
	codeAdminShutdown               = "57P01" // admin_shutdown: the upstream server closed the connection
	codeInvalidCatalogName          = "3D000" // invalid_catalog_name: the database is not registered
	codeInFailedTransaction         = "25P02" // in_failed_sql_transaction
	codeUndefinedParameter          = "42P02" // undefined_parameter: $1 in the simple protocol
	codeInvalidBinaryRepresentation = "22P03"
)

// MsgInsecure is the refusal of a plaintext StartupMessage from a client
// that may not send its token without TLS (Neon's words; libpq in prefer
// mode shows it and does not retry with the password in cleartext).
const MsgInsecure = "connection is insecure (try using sslmode=require)"

// tokenError returns the ErrorResponse fields for a Verify or scope error:
// FATAL 28P01 in the guide's words for a bad, expired or revoked token (the
// detail says what exactly was wrong), ERROR 42501 naming a missing scope.
func tokenError(err error) ErrorFields {
	te, ok := err.(*core.Error)
	if !ok {
		return ErrorFields{Severity: "FATAL", Code: codeInvalidPassword, Message: core.MsgInvalid}
	}
	switch {
	case te == core.ErrAddrNotAllowed:
		// Refused at connection time: PostgreSQL's pg_hba "no entry" words.
		return ErrorFields{Severity: "FATAL", Code: codeInvalidAuthSpec, Message: te.Message, Detail: te.Detail}
	case te == core.ErrTestDatabaseOnly:
		// PostgreSQL's "permission denied for database" is FATAL 42501.
		return ErrorFields{Severity: "FATAL", Code: codeInsufficientPriv, Message: te.Message, Detail: te.Detail,
			Hint: "Connect to a database created with \"test\": true, or use a live token."}
	case te.Kind == core.KindForbidden:
		return ErrorFields{Severity: "ERROR", Code: codeInsufficientPriv, Message: te.Message}
	case te.Kind == core.KindUnavailable:
		return ErrorFields{Severity: "FATAL", Code: codeCannotConnectNow, Message: te.Message}
	}
	f := ErrorFields{Severity: "FATAL", Code: codeInvalidPassword, Message: te.Message, Detail: te.Detail}
	if te.Kind == core.KindExpired {
		f.Hint = "Create a new token (helios auth token) and connect with it as the password."
	}
	return f
}

// insecureError is the FATAL 28000 sent before the password is asked for.
var insecureError = ErrorFields{Severity: "FATAL", Code: codeInvalidAuthSpec, Message: MsgInsecure,
	Hint: "Connect with TLS (sslmode=require); tokens are never accepted in plaintext from this address."}

// noUpstreamError answers every statement the built-in responder does not know.
var noUpstreamError = ErrorFields{
	Severity: "ERROR",
	Code:     codeFeatureNotSupported,
	Message:  "no upstream database is configured: this gateway answers only its built-in commands",
	Detail:   "Built-in commands: SELECT 1, SELECT current_user, SELECT version(), SHOW <parameter>, SELECT * FROM helios_whoami().",
	Hint:     "Other statements need the gateway's proxy mode with an upstream PostgreSQL configured for this node.",
}

// protocolViolation is a FATAL 08P01 with msg.
func protocolViolation(msg string) ErrorFields {
	return ErrorFields{Severity: "FATAL", Code: codeProtocolViolation, Message: msg}
}

// limitError returns the PostgreSQL error for a limit the transport enforced.
func limitError(l netio.Limit) ErrorFields {
	switch l {
	case netio.LimitConnections:
		return ErrorFields{Severity: "FATAL", Code: codeTooManyConnections, Message: "sorry, too many clients already"}
	case netio.LimitHandshakeTimeout:
		return ErrorFields{Severity: "FATAL", Code: codeQueryCanceled, Message: "canceling authentication due to timeout"}
	case netio.LimitIdleTimeout:
		return ErrorFields{Severity: "FATAL", Code: codeIdleSessionTimeout, Message: "terminating connection due to idle-session timeout"}
	case netio.LimitMessageSize:
		return ErrorFields{Severity: "FATAL", Code: codeProgramLimit, Message: "message too large"}
	}
	return ErrorFields{Severity: "FATAL", Code: codeProtocolViolation, Message: "connection limit reached"}
}

// errWrongUser is the error observed for a user name other than default.
var errWrongUser = &core.Error{Kind: core.KindInvalid, Message: core.MsgInvalid,
	Detail: "HeliosDB tokens authenticate the user default"}

// wrongUserError is the FATAL 28P01 for a startup user name other than
// default, sent before the password is asked for.
func wrongUserError(user []byte) ErrorFields {
	if len(user) > maxIdentifierLen {
		user = user[:maxIdentifierLen]
	}
	return ErrorFields{Severity: "FATAL", Code: codeInvalidPassword,
		Message: "password authentication failed for user \"" + string(user) + "\"",
		Detail:  "HeliosDB tokens authenticate the user default",
		Hint:    "connect as user default with the token as the password (postgresql://default:$HELIOS_TOKEN@host/main)"}
}
