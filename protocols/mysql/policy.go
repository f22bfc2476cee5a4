package mysql

import (
	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/sqlscope"
)

// This file is what the gateway checks beyond the token itself: the token's
// IP allowlist and the test-database rule when a session is admitted, the
// test-database rule again whenever a database is selected or a statement
// needs one, and the token's standing for as long as the session lasts.
//
// Test tokens (hdb_test_) and databases. A test token may connect with a
// test database as its schema (CONNECT_WITH_DB) or with none; any other
// schema gets 1044 at connect. Without a database it may still run what
// needs none — the built-in queries (SELECT 1, @@version_comment,
// DATABASE(), USER(), helios_whoami()), SET, transactions, COM_PING — but a
// statement that needs a database gets 1046 (3D000, "No database
// selected") until USE or COM_INIT_DB selects a test database; USE of any
// other database gets 1044 and leaves the selection as it was. The current
// database is checked against the registry again on every such statement,
// so a test database removed from the registry stops serving test tokens
// at once. CREATE/DROP DATABASE by a test token is checked against the
// database it names. Database names written inside a statement
// (SELECT … FROM prod.t) are not parsed here: the built-in responder ends
// every such statement in 1235 regardless, and in proxy mode the test
// users have no grant outside the test databases, so the upstream refuses
// them (1142, with the guide's reason added).

// recheck re-checks the session's token before a command, as a fresh
// verification would (netio.Env.Recheck: the key, the revocation view, and
// expiry unless the gateway is configured to keep sessions past their
// token's expiry). On failure it appends the ERR packet naming the reason,
// evicts the token's fast-auth cache entry, and the session ends.
func (s *Session) recheck(env *netio.Env, out []byte) ([]byte, bool) {
	err := env.Recheck(&s.claims)
	if err == nil {
		return out, true
	}
	env.Observer.Authenticated(s.info, &s.claims, err, env.Now)
	s.forget()
	return s.appendSessionEnded(out, s.seq+1, err), false
}

// forget evicts the session's token from the fast-auth cache (it stopped
// holding; a later fast-auth attempt would find that out too, this just
// saves it the work).
func (s *Session) forget() {
	if s.cached && s.p.cache != nil {
		s.p.cache.evict(s.info.Remote.Addr(), s.stage2)
		s.cached = false
	}
}

// admitted ends a successful authentication, full or fast, once
// netio.Env.Admit or AdmitClaims has admitted the claims in s.claims (the
// token's IP allowlist, the handshake's database for a test token, the
// observer and the usage record): it appends the fast-auth success marker
// (01 03) when fast, then the OK packet; seq is the sequence id of the
// first packet appended. In proxy mode the server connection is taken
// first (startProxy), and its failure ends the session.
func (s *Session) admitted(env *netio.Env, out []byte, seq byte, fast bool) ([]byte, netio.Action) {
	if s.p.up != nil {
		if s.loopMode() {
			return s.startLoopProxy(env, out, seq, fast)
		}
		return s.startProxy(env, out, seq, fast)
	}
	if fast {
		out = AppendAuthMoreData(out, seq, fastAuthOK[:])
		seq++
	}
	s.state = stCommand
	return AppendOK(out, seq), netio.Continue
}

// refused answers an authentication that Admit or AdmitClaims refused:
// 1044 with the reason for a test token on a database that is not a test
// database, 1045 with the reason for everything else (the token, its IP
// allowlist); the connection is closed.
func (s *Session) refused(out []byte, seq byte, err error) []byte {
	if err == core.ErrTestDatabaseOnly {
		return s.appendDBRefused(out, seq, s.db, err)
	}
	return s.appendAccessDenied(out, seq, err)
}

// knownDB reports whether db, a schema named at the handshake or by USE /
// COM_INIT_DB, is a registered database (none named passes: MySQL
// without a schema selects none).
func (s *Session) knownDB(db []byte) bool {
	return len(db) == 0 || core.KnownDatabase(s.p.policy, db)
}

// fastAuthOK is AuthMoreData's payload for a fast-auth success.
var fastAuthOK = [1]byte{fastAuthSuccess}

// allowUse checks that the session's token may select db (USE,
// COM_INIT_DB): a test token only a test database. On refusal it appends
// 1044 with the reason and records it (counted as forbidden).
func (s *Session) allowUse(env *netio.Env, db, out []byte) ([]byte, bool) {
	if err := core.AllowDatabase(s.p.policy, &s.claims, db); err != nil {
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now)
		return s.appendDBRefused(out, s.seq+1, db, err), false
	}
	return out, true
}

// allowStatements checks the test-database rule for a query (q: a
// COM_QUERY or COM_STMT_PREPARE text, every statement of it under every
// reading; nil for another command that needs a database): a test token
// may name only test databases in USE and CREATE/DROP DATABASE (1044), and
// needs a test database selected for anything else that needs a scope
// (1046 without one, 1044 when the selected one is no longer a test
// database) — a USE earlier in the same text does not count. Other tokens
// always pass.
func (s *Session) allowStatements(env *netio.Env, q, out []byte) ([]byte, bool) {
	if s.claims.Flags&core.FlagTestOnly == 0 {
		return out, true
	}
	needDB := q == nil
	if q != nil {
		w := sqlscope.NewWalker(sqlscope.MySQL, q)
		for {
			st, more := w.Next()
			if !more {
				break
			}
			switch {
			case st.Need == 0:
				// SET, transactions: no database
			case st.Database:
				var ok bool
				if out, ok = s.allowUse(env, st.Target, out); !ok {
					return out, false
				}
			default:
				needDB = true
			}
		}
	}
	if !needDB {
		return out, true
	}
	if len(s.db) == 0 {
		env.Observer.Authenticated(s.info, &s.claims, core.ErrTestDatabaseOnly, env.Now)
		return AppendERR(out, s.seq+1, erNoDB, stateInvalidCatalogName, msgTestNoDB), false
	}
	return s.allowUse(env, s.db, out)
}
