package postgres

// What proxy mode answers in PostgreSQL's words: upstream failures, and the
// role's refusals (wall 2) with the scope that would have allowed them.

import (
	"context"
	"errors"
	"net"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/protocols/internal/upstream"
	"github.com/jackc/pgx/v5/pgconn"
)

// annotatePermissionError returns a server ErrorResponse (msg: the whole
// message) for insufficient_privilege (42501) or a write in a read-only
// transaction (25006) with the guide's scope message added to its text, as
// the gateway's own refusals word it; nil for any other error, or when no
// scope would have helped (the owner role).
func annotatePermissionError(msg []byte, role upstream.Role) []byte {
	scope, ok := scopeBeyond(role)
	if !ok {
		return nil
	}
	body := msg[messageHeaderLen:]
	code := ""
	for rest := body; len(rest) > 1; {
		v, r, ok := cstring(rest[1:])
		if !ok {
			return nil
		}
		if rest[0] == 'C' {
			code = string(v)
		}
		rest = r
	}
	if !isPermissionCode(code) {
		return nil
	}
	out, at := begin(make([]byte, 0, len(msg)+64), 'E')
	for rest := body; len(rest) > 1; {
		v, r, _ := cstring(rest[1:])
		out = append(out, rest[0])
		out = append(out, v...)
		if rest[0] == 'M' {
			out = append(out, " ("+core.ForbiddenError(scope).Message+")"...)
		}
		out = append(out, 0)
		rest = r
	}
	return finish(append(out, 0), at)
}

// scopeBeyond is the scope that would have given a role's session more: the
// one a permission error names (none for the owner role).
func scopeBeyond(role upstream.Role) (core.Scope, bool) {
	switch role.Level() {
	case upstream.Read:
		return core.ScopeDatabaseWrite, true
	case upstream.Write:
		return core.ScopeSchemaWrite, true
	}
	return 0, false
}

// isPermissionCode reports whether a SQLSTATE is a refusal by the role:
// insufficient_privilege, or a write in a read-only transaction.
func isPermissionCode(code string) bool { return code == "42501" || code == "25006" }

// upstreamLostError ends a session whose server connection failed.
var upstreamLostError = ErrorFields{Severity: "FATAL", Code: codeAdminShutdown,
	Message: "terminating connection: the upstream PostgreSQL server closed the connection", Hint: "Reconnect."}

// upstreamConnectError words a failure to get a server connection.
func upstreamConnectError(up *Upstream, err error) ErrorFields {
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, upstream.ErrExhausted):
		return ErrorFields{Severity: "FATAL", Code: codeTooManyConnections, Message: "sorry, too many clients already",
			Detail: "Every upstream connection of this role and database stayed in use; try again, or raise --pg-pool-size."}
	case errors.As(err, &pe):
		return upstreamError(pe)
	}
	var ne net.Error
	msg := "the upstream PostgreSQL server is not available"
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		msg = "the upstream PostgreSQL server did not answer in time"
	}
	return ErrorFields{Severity: "FATAL", Code: codeCannotConnectNow, Message: msg,
		Detail: "HeliosDB could not open a connection to " + up.Address() + "; it retries on the next connection.", Hint: "Try again shortly."}
}

// upstreamError passes a server's error on as FATAL.
func upstreamError(err error) ErrorFields {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return ErrorFields{Severity: "FATAL", Code: pe.Code, Message: pe.Message, Detail: pe.Detail, Hint: pe.Hint}
	}
	return upstreamLostError
}
