package mysql

// Proxy session end (reset-on-return to the pool) and the errors of proxy mode, including upstream permission-error annotation.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// closeProxy ends the server side when the client connection ends: the
// server connection goes back to the pool, reset with COM_RESET_CONNECTION,
// when the client left cleanly (COM_QUIT, nothing outstanding, not in a
// transaction, not revoked); otherwise it is closed, and a statement still
// running on it is ended with KILL.
func (s *Session) closeProxy() {
	px := s.px
	if px == nil {
		return
	}
	px.mu.Lock()
	px.stopping = true
	px.mu.Unlock()
	_ = px.sc.SetReadDeadline(time.Now()) // stop the pump
	<-px.done
	px.mu.Lock()
	reusable := px.clean && !px.revoked && !px.dead && len(px.pending) == 0 && !px.infile &&
		px.status&serverStatusInTrans == 0 && !px.optionChanged && !(px.dbChanged && px.key.Database == "")
	busy := len(px.pending) > 0 || px.infile
	px.dead = true
	px.mu.Unlock()
	if !reusable {
		px.up.pool.Discard(px.key, px.sc)
		if busy {
			px.up.kill(px.key.Role, px.sc.threadID)
		}
		return
	}
	// On the session's own goroutine (a proxied session always runs on
	// one): the client is gone already, and the next client of this pool
	// finds the connection ready.
	px.reset()
}

// reset makes a cleanly left server connection ready for the next client
// (COM_RESET_CONNECTION: rolls back, drops temporary tables, prepared
// statements and user variables, restores session variables; then the
// pool's database again when the client selected another) and returns it
// to the pool.
func (px *proxy) reset() {
	sc := px.sc
	_ = sc.SetDeadline(time.Now().Add(5 * time.Second))
	status, err := roundTrip(sc, []byte{comResetConnection})
	if err == nil && px.dbChanged {
		status, err = roundTrip(sc, append([]byte{comInitDB}, px.key.Database...))
	}
	if err != nil || status&serverStatusInTrans != 0 {
		px.up.pool.Discard(px.key, sc)
		return
	}
	_ = sc.SetDeadline(time.Time{})
	sc.status = status
	px.up.pool.Put(px.key, sc)
}

// roundTrip sends a command whose reply is one OK packet (sequence id 0)
// and reads the reply; an ERR is returned as a *serverError.
func roundTrip(c net.Conn, payload []byte) (uint16, error) {
	b, start := beginPacket(make([]byte, 0, packetHeaderLen+len(payload)), 0)
	if _, err := c.Write(endPacket(append(b, payload...), start)); err != nil {
		return 0, err
	}
	var h [packetHeaderLen]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return 0, err
	}
	p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	if _, err := io.ReadFull(c, p); err != nil {
		return 0, err
	}
	if len(p) > 0 && p[0] == headerERR {
		return 0, parseERR(p)
	}
	_, status, ok := okStatus(p)
	if len(p) == 0 || p[0] != headerOK || !ok {
		return 0, errors.New("upstream: unexpected reply")
	}
	return status, nil
}

// Errors of proxy mode.
const (
	erCantConnect  = 2003 // CR_CONN_HOST_ERROR: Can't connect to MySQL server
	erServerLost   = 2013 // CR_SERVER_LOST: Lost connection to MySQL server during query
	msgUpstreamGot = "Lost connection to MySQL server during query: the upstream server behind the HeliosDB gateway closed the connection; reconnect"
)

// appendUpstreamLost appends the ERR that ends a session whose server
// connection failed.
func appendUpstreamLost(dst []byte, seq byte) []byte {
	return AppendERR(dst, seq, erServerLost, stateGeneralError, msgUpstreamGot)
}

// appendLoadRefused appends the ERR for a LOCAL INFILE request on a
// session whose token may not write.
func appendLoadRefused(dst []byte, seq byte) []byte {
	return AppendERR(dst, seq, erTableAccessDenied, stateSyntaxOrAccessRule,
		"LOAD DATA LOCAL command denied: "+core.ForbiddenError(core.ScopeDatabaseWrite).Message+" (the session is closed)")
}

// appendUpstreamConnectError words a failure to get a server connection:
// 1040 when the pool stayed exhausted, the server's own error when it
// refused the login, 2003 when it could not be reached.
func appendUpstreamConnectError(dst []byte, seq byte, up *Upstream, err error) []byte {
	var se *serverError
	switch {
	case errors.Is(err, upstream.ErrExhausted):
		return AppendERR(dst, seq, erConCount, stateConnectionRejected,
			"Too many connections: every upstream connection of this role and database stayed in use; try again, or raise --mysql-pool-size")
	case errors.As(err, &se):
		return AppendERR(dst, seq, se.Code, se.State, "The upstream server behind the HeliosDB gateway refused its login: "+se.Message)
	}
	why := "it is not available"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		why = "it did not answer in time"
	} else if err != nil {
		why = err.Error()
	}
	return AppendERR(dst, seq, erCantConnect, stateGeneralError,
		"Can't connect to MySQL server on '"+up.Address()+"': the HeliosDB gateway could not reach its upstream server ("+why+"); it retries on the next connection")
}

// Upstream permission errors the gateway annotates.
const (
	erColumnAccessDenied   = 1143 // ER_COLUMNACCESS_DENIED_ERROR
	erSpecificAccessDenied = 1227 // ER_SPECIFIC_ACCESS_DENIED_ERROR
	erProcAccessDenied     = 1370 // ER_PROCACCESS_DENIED_ERROR
)

// annotatePermissionError returns an upstream ERR packet (pkt: header and
// payload) for a privilege the session's user lacks, with the reason in
// the guide's words added to its message, as the gateway's own refusals
// word it: the scope the token lacks, or, when the token holds it, that
// the user reaches only HeliosDB's databases (test tokens: only test
// databases). It returns nil for any other error.
func annotatePermissionError(pkt []byte, role upstream.Role) []byte {
	p := pkt[packetHeaderLen:]
	if len(p) < 9 || p[0] != headerERR || p[3] != sqlStateMarker {
		return nil
	}
	msg := string(p[9:])
	reason := ""
	switch binary.LittleEndian.Uint16(p[1:]) {
	case erTableAccessDenied, erColumnAccessDenied, erProcAccessDenied:
		verb, _, ok := strings.Cut(msg, " command denied")
		if !ok {
			return nil
		}
		if sc := verbScope(strings.ToUpper(verb)); !roleHas(role, sc) {
			reason = core.ForbiddenError(sc).Message
		} else {
			reason = reachReason(role)
		}
	case erDBAccessDenied:
		reason = reachReason(role)
	case erSpecificAccessDenied:
		reason = "the HeliosDB users hold no server-wide privilege"
	default:
		return nil
	}
	out, start := beginPacket(make([]byte, 0, len(pkt)+len(reason)+3), pkt[3])
	out = append(out, p[:9]...)
	out = append(out, msg...)
	out = append(out, " ("...)
	out = append(out, reason...)
	out = append(out, ')')
	return endPacket(out, start)
}

// verbScope is the scope a privilege named in "<VERB> command denied"
// belongs to.
func verbScope(verb string) core.Scope {
	switch verb {
	case "SELECT", "SHOW VIEW":
		return core.ScopeDatabaseRead
	case "INSERT", "UPDATE", "DELETE", "LOCK TABLES", "CREATE TEMPORARY TABLES", "EXECUTE", "DELETE HISTORY":
		return core.ScopeDatabaseWrite
	}
	return core.ScopeSchemaWrite
}

// roleHas reports whether role's privileges include those of scope sc.
func roleHas(role upstream.Role, sc core.Scope) bool {
	switch sc {
	case core.ScopeDatabaseRead:
		return true
	case core.ScopeDatabaseWrite:
		return role.Level() >= upstream.Write
	}
	return role.Level() >= upstream.Owner
}

// reachReason explains a refusal the token's scopes do not: the user
// reaches only the registered databases, a test user only test ones.
func reachReason(role upstream.Role) string {
	if role.IsTest() {
		return core.ErrTestDatabaseOnly.Message
	}
	return "HeliosDB reaches only its registered databases (POST /v1/databases)"
}
