package redis

import (
	"bytes"
	"strconv"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// crossKind says which logical databases a command names or reaches
// besides the selected one, which every data command already checks.
type crossKind uint8

const (
	crossNone    crossKind = iota
	crossMove              // MOVE key db: db
	crossCopy              // COPY source destination [DB db] [REPLACE]: db
	crossSwap              // SWAPDB index1 index2: both
	crossMigrate           // MIGRATE host port key|"" db timeout …: a database on another server
	crossAll               // FLUSHALL, scripts (which may SELECT): every logical database
)

// crossCommands are the commands that name or reach another logical
// database. A script (EVAL, FCALL and their variants) can call SELECT and
// so reach any database; what it will do cannot be checked beforehand.
var crossCommands = map[string]crossKind{
	"move":     crossMove,
	"copy":     crossCopy,
	"swapdb":   crossSwap,
	"migrate":  crossMigrate,
	"flushall": crossAll,
	"eval":     crossAll, "evalsha": crossAll, "eval_ro": crossAll, "evalsha_ro": crossAll,
	"fcall": crossAll, "fcall_ro": crossAll,
}

// crossDatabases checks the other databases a command of kind k names or
// reaches against the registry (core.AllowDatabase, the rule SELECT
// applies) and appends the refusal, or Redis's own error for a malformed
// database index, returning refused = true; an allowed command appends
// nothing. MIGRATE writes to a database on another server, which is in no
// registry: a test token is refused it outright.
func (s *Session) crossDatabases(env *netio.Env, k crossKind, name []byte, args [][]byte, out []byte) ([]byte, bool) {
	switch k {
	case crossMove:
		if len(args) != 3 {
			return appendArgCount(out, name), true
		}
		return s.crossIndex(env, name, args[2], out, "")
	case crossCopy:
		if len(args) < 3 {
			return appendArgCount(out, name), true
		}
		for i := 3; i < len(args); i++ {
			switch {
			case bytes.EqualFold(args[i], []byte("replace")):
			case bytes.EqualFold(args[i], []byte("db")) && i+1 < len(args):
				i++
				if o, refused := s.crossIndex(env, name, args[i], out, ""); refused {
					return o, true
				}
			default:
				return AppendError(out, "ERR syntax error"), true
			}
		}
		return out, false
	case crossSwap:
		if len(args) != 3 {
			return appendArgCount(out, name), true
		}
		if o, refused := s.crossIndex(env, name, args[1], out, "ERR invalid first DB index"); refused {
			return o, true
		}
		return s.crossIndex(env, name, args[2], out, "ERR invalid second DB index")
	case crossMigrate:
		if len(args) < 6 {
			return appendArgCount(out, name), true
		}
		if s.claims.Flags&core.FlagTestOnly == 0 {
			return out, false
		}
		env.Observer.Authenticated(s.info, &s.claims, core.ErrTestDatabaseOnly, env.Now) // counted as forbidden
		out = append(out, "-NOPERM User default has no permissions to run the '"...)
		out = appendClean(out, name)
		out = append(out, "' command to database "...)
		out = appendClean(out, args[4])
		out = append(out, " on "...)
		out = appendClean(out, args[1])
		out = append(out, ':')
		out = appendClean(out, args[2])
		out = append(out, " ("...)
		out = append(out, core.ErrTestDatabaseOnly.Message...)
		return append(out, ": MIGRATE writes to another server, whose databases are not in HeliosDB's registry of test databases)\r\n"...), true
	case crossAll:
		for db := range numDatabases {
			if err := core.AllowDatabase(s.p.policy, &s.claims, databaseName(db)); err != nil {
				env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
				out = append(out, "-NOPERM User default has no permissions to run the '"...)
				out = appendClean(out, name)
				out = append(out, "' command, which reaches every logical database (0 to 15), including database "...)
				out = strconv.AppendInt(out, int64(db), 10)
				return appendTestOnlyReason(out, db), true
			}
		}
	}
	return out, false
}

// crossIndex parses a database index the command names and checks it as
// SELECT would; notInt is the error for a value that is not an integer
// ("" for Redis's usual one).
func (s *Session) crossIndex(env *netio.Env, name, arg, out []byte, notInt string) ([]byte, bool) {
	v, ok := parseUint(arg)
	if !ok {
		if len(arg) > 1 && arg[0] == '-' {
			if _, neg := parseUint(arg[1:]); neg {
				return AppendError(out, "ERR DB index is out of range"), true
			}
		}
		if notInt == "" {
			notInt = "ERR value is not an integer or out of range"
		}
		return AppendError(out, notInt), true
	}
	if v >= numDatabases {
		return AppendError(out, "ERR DB index is out of range"), true
	}
	if err := core.AllowDatabase(s.p.policy, &s.claims, databaseName(int(v))); err != nil {
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
		return appendTestOnly(out, name, int(v)), true
	}
	if !s.knownDB(int(v)) {
		return AppendError(out, "ERR DB index is out of range"), true
	}
	return out, false
}
