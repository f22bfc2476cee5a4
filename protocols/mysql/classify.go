package mysql

import (
	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/sqlscope"
)

// Which scopes a statement needs is sqlscope's decision, shared with the
// PostgreSQL and REST front ends: this file maps it to MySQL's errors.

// checkSQL checks a COM_QUERY or COM_STMT_PREPARE text — every statement
// of it, as MySQL and MariaDB read it — against the session's token. On
// denial it appends the error (deny) and returns false.
func (s *Session) checkSQL(env *netio.Env, q, out []byte) (sqlscope.Result, []byte, bool) {
	r := sqlscope.Classify(sqlscope.MySQL, q)
	if d, denied := r.Deny(s.claims.Scopes); denied {
		return r, s.deny(env, out, d), false
	}
	return r, out, true
}

// deny appends MySQL's error for a denial and records it (counted as
// forbidden): 1142 "<VERB> command denied to user …: Token does not have
// required scope: <scope>" (or ": Statement not allowed through the
// HeliosDB gateway: <reason>"), and 1044 "Access denied for user … to
// database 'db': …" for a database-level statement missing its scope.
func (s *Session) deny(env *netio.Env, out []byte, d sqlscope.Denial) []byte {
	env.Observer.Authenticated(s.info, &s.claims, d.Err, env.Now)
	if d.Database && d.Refused == 0 {
		db := d.Target
		if db == nil {
			db = s.db
		}
		return s.appendDBRefused(out, s.seq+1, db, d.Err)
	}
	return s.appendCommandDenied(out, s.seq+1, d.Verb, d.Err)
}

// denyScope is the denial of a built-in that needs scope sc.
func denyScope(sc core.Scope, verb string, database bool, db []byte) sqlscope.Denial {
	return sqlscope.Denial{Err: core.ForbiddenError(sc), Scope: sc, Verb: verb, Database: database, Target: db}
}

// firstStatement returns the first statement of q as the servers read it
// by default (after checkSQL passed it).
func firstStatement(q []byte) sqlscope.Statement {
	w := sqlscope.NewWalker(sqlscope.MySQL, q)
	st, _ := w.Next()
	return st
}
