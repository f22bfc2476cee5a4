package mongodb

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
	"github.com/heliosdb/auth/netio"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// opMsgSeq encodes an OP_MSG with a kind-0 body and one kind-1 document
// sequence named ident.
func opMsgSeq(t testing.TB, reqID int32, doc any, ident string, docs ...any) []byte {
	t.Helper()
	b := opMsg(t, reqID, 0, doc)
	var seq []byte
	seq = append(seq, ident...)
	seq = append(seq, 0)
	for _, d := range docs {
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, raw...)
	}
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(4+len(seq)))
	b = append(b, seq...)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	return b
}

// TestCrossDatabaseCommands: the databases a command names besides its $db
// (aggregation stages at any depth, views, mapReduce, renameCollection,
// explain) are checked against the registry before anything else answers
// the command. "prod" is registered and not a test database,
// "analytics_test" and "scratch_test" are test databases, "main" is not
// registered. A live token is not limited by the registry, so its commands
// reach the "no upstream" reply (CommandNotSupported).
func TestCrossDatabaseCommands(t *testing.T) {
	pipe := func(stages ...bson.D) bson.D {
		a := bson.A{}
		for _, s := range stages {
			a = append(a, s)
		}
		return bson.D{{Key: "aggregate", Value: "orders"}, {Key: "pipeline", Value: a}, {Key: "cursor", Value: bson.D{}}}
	}
	ns := func(db, coll string) bson.D { return bson.D{{Key: "db", Value: db}, {Key: "coll", Value: coll}} }
	lookupFrom := func(from any, pipeline ...bson.D) bson.D {
		l := bson.D{{Key: "from", Value: from}, {Key: "as", Value: "j"}}
		if pipeline != nil {
			a := bson.A{}
			for _, s := range pipeline {
				a = append(a, s)
			}
			l = append(l, bson.E{Key: "pipeline", Value: a})
		}
		return bson.D{{Key: "$lookup", Value: l}}
	}
	names := func(what, db string) string {
		return what + ` names database "` + db + `", which is not registered as a test database; hdb_test_ tokens may use only databases created with "test": true)`
	}
	const (
		denied   = CodeUnauthorized
		upstream = CodeCommandNotSupported
	)
	for _, tc := range []struct {
		name      string
		test      bool // a test token; else a live token (all scopes)
		adminTest bool // "admin" is registered as a test database
		db        string
		cmd       bson.D
		seq       []any  // a kind-1 sequence
		seqID     string // its identifier ("pipeline" by default)
		code      int32
		msg       string // a part of errmsg
	}{
		{name: "$out to a live database", test: true, cmd: pipe(bson.D{{Key: "$out", Value: ns("prod", "x")}}), code: denied,
			msg: `not authorized on analytics_test to execute command { aggregate: "orders", $db: "analytics_test" }: ` +
				core.ErrTestDatabaseOnly.Message + " (" + names("its $out stage", "prod")},
		{name: "$out to an unregistered database", test: true, cmd: pipe(bson.D{{Key: "$out", Value: ns("main", "x")}}), code: denied, msg: names("its $out stage", "main")},
		{name: "$out to a test database", test: true, cmd: pipe(bson.D{{Key: "$out", Value: ns("scratch_test", "x")}}), code: upstream},
		{name: "$out to a collection", test: true, cmd: pipe(bson.D{{Key: "$out", Value: "x"}}), code: upstream},
		{name: "$out, db not a string", test: true, cmd: pipe(bson.D{{Key: "$out", Value: bson.D{{Key: "db", Value: 5}, {Key: "coll", Value: "x"}}}}),
			code: denied, msg: "its $out stage names a database by a value that is not a string"},
		{name: "$out, live token", cmd: pipe(bson.D{{Key: "$out", Value: ns("main", "x")}}), code: upstream},

		{name: "$merge into a live database", test: true, cmd: pipe(bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: ns("prod", "x")}}}}), code: denied, msg: names("its $merge stage", "prod")},
		{name: "$merge into a test database", test: true, cmd: pipe(bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: ns("scratch_test", "x")}, {Key: "whenMatched", Value: "merge"}}}}), code: upstream},
		{name: "$merge into a collection", test: true, cmd: pipe(bson.D{{Key: "$merge", Value: "x"}}), code: upstream},
		{name: "$merge, live token", cmd: pipe(bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: ns("prod", "x")}}}}), code: upstream},

		{name: "$lookup from a live database", test: true, cmd: pipe(lookupFrom(ns("prod", "users"))), code: denied, msg: names("its $lookup stage", "prod")},
		{name: "$lookup from a collection", test: true, cmd: pipe(lookupFrom("users")), code: upstream},
		{name: "$lookup from a test database", test: true, cmd: pipe(lookupFrom(ns("scratch_test", "users"))), code: upstream},
		{name: "$lookup, live token", cmd: pipe(lookupFrom(ns("prod", "users"))), code: upstream},
		{name: "$graphLookup from a live database", test: true, cmd: pipe(bson.D{{Key: "$graphLookup", Value: bson.D{{Key: "from", Value: ns("prod", "g")},
			{Key: "startWith", Value: "$a"}, {Key: "connectFromField", Value: "a"}, {Key: "connectToField", Value: "b"}, {Key: "as", Value: "g"}}}}),
			code: denied, msg: names("its $graphLookup stage", "prod")},
		{name: "$unionWith a db field", test: true, cmd: pipe(bson.D{{Key: "$unionWith", Value: bson.D{{Key: "db", Value: "prod"}, {Key: "coll", Value: "c"}}}}),
			code: denied, msg: names("its $unionWith stage", "prod")},
		{name: "$unionWith coll as a namespace", test: true, cmd: pipe(bson.D{{Key: "$unionWith", Value: bson.D{{Key: "coll", Value: ns("prod", "c")}}}}),
			code: denied, msg: names("its $unionWith stage", "prod")},
		{name: "$unionWith a collection", test: true, cmd: pipe(bson.D{{Key: "$unionWith", Value: "c"}}), code: upstream},

		{name: "inside $facet", test: true, cmd: pipe(bson.D{{Key: "$match", Value: bson.D{}}},
			bson.D{{Key: "$facet", Value: bson.D{{Key: "a", Value: bson.A{bson.D{{Key: "$limit", Value: 1}}}}, {Key: "b", Value: bson.A{lookupFrom(ns("prod", "u"))}}}}}),
			code: denied, msg: names("its $lookup stage", "prod")},
		{name: "inside a $lookup pipeline", test: true, cmd: pipe(lookupFrom("users", bson.D{{Key: "$unionWith", Value: bson.D{{Key: "coll", Value: ns("prod", "c")}}}})),
			code: denied, msg: names("its $unionWith stage", "prod")},
		{name: "inside a $unionWith pipeline, two deep", test: true, cmd: pipe(bson.D{{Key: "$unionWith", Value: bson.D{{Key: "coll", Value: "c"},
			{Key: "pipeline", Value: bson.A{lookupFrom("u", bson.D{{Key: "$out", Value: ns("main", "x")}})}}}}}),
			code: denied, msg: names("its $out stage", "main")},
		{name: "nested, all test databases", test: true, cmd: pipe(bson.D{{Key: "$unionWith", Value: bson.D{{Key: "coll", Value: ns("scratch_test", "c")},
			{Key: "pipeline", Value: bson.A{lookupFrom(ns("analytics_test", "u"))}}}}}), code: upstream},

		{name: "explain of an aggregate", test: true, cmd: bson.D{{Key: "explain", Value: pipe(lookupFrom(ns("prod", "u")))}}, code: denied, msg: names("its $lookup stage", "prod")},
		{name: "view over another database", test: true, cmd: bson.D{{Key: "create", Value: "v"}, {Key: "viewOn", Value: "orders"},
			{Key: "pipeline", Value: bson.A{lookupFrom(ns("prod", "u"))}}}, code: denied, msg: names("its $lookup stage", "prod")},
		{name: "mapReduce out.db", test: true, cmd: bson.D{{Key: "mapReduce", Value: "orders"}, {Key: "map", Value: "function(){}"}, {Key: "reduce", Value: "function(){}"},
			{Key: "out", Value: bson.D{{Key: "replace", Value: "x"}, {Key: "db", Value: "prod"}}}}, code: denied, msg: names("mapReduce's out.db", "prod")},
		{name: "mapReduce, live token", cmd: bson.D{{Key: "mapReduce", Value: "orders"}, {Key: "out", Value: bson.D{{Key: "replace", Value: "x"}, {Key: "db", Value: "prod"}}}}, code: upstream},

		{name: "renameCollection on admin", test: true, db: "admin", cmd: bson.D{{Key: "renameCollection", Value: "analytics_test.a"}, {Key: "to", Value: "scratch_test.b"}},
			code: denied, msg: `not authorized on admin to execute command { renameCollection: "analytics_test.a", $db: "admin" }: ` + core.ErrTestDatabaseOnly.Message + ` (database "admin"`},
		{name: "renameCollection to a live database", test: true, adminTest: true, db: "admin", cmd: bson.D{{Key: "renameCollection", Value: "analytics_test.a"}, {Key: "to", Value: "prod.b"}},
			code: denied, msg: names("renameCollection's target namespace (to)", "prod")},
		{name: "renameCollection from a live database", test: true, adminTest: true, db: "admin", cmd: bson.D{{Key: "renameCollection", Value: "prod.a"}, {Key: "to", Value: "analytics_test.b"}},
			code: denied, msg: names("renameCollection's source namespace", "prod")},
		{name: "renameCollection between test databases", test: true, adminTest: true, db: "admin", cmd: bson.D{{Key: "renameCollection", Value: "analytics_test.a"}, {Key: "to", Value: "scratch_test.b"}},
			code: upstream},
		{name: "renameCollection, live token", db: "admin", cmd: bson.D{{Key: "renameCollection", Value: "analytics_test.a"}, {Key: "to", Value: "prod.b"}}, code: upstream},

		{name: "pipeline as a document sequence", test: true, cmd: bson.D{{Key: "aggregate", Value: "orders"}, {Key: "cursor", Value: bson.D{}}},
			seq: []any{bson.D{{Key: "$out", Value: ns("prod", "x")}}}, code: denied, msg: "it carries an OP_MSG document sequence (kind 1)"},
		{name: "document sequence, live token", cmd: bson.D{{Key: "aggregate", Value: "orders"}, {Key: "cursor", Value: bson.D{}}},
			seq: []any{bson.D{{Key: "$out", Value: ns("prod", "x")}}}, code: upstream},
		{name: "insert's documents sequence is not refused", test: true, cmd: bson.D{{Key: "insert", Value: "orders"}},
			seq: []any{bson.D{{Key: "db", Value: "prod"}}}, seqID: "documents", code: upstream},

		{name: "copydb is not a command", test: true, db: "admin", cmd: bson.D{{Key: "copydb", Value: 1}, {Key: "fromdb", Value: "prod"}, {Key: "todb", Value: "analytics_test"}},
			code: CodeCommandNotFound, msg: "no such command: 'copydb'"},
		{name: "cloneCollection is not a command", cmd: bson.D{{Key: "cloneCollection", Value: "prod.c"}, {Key: "from", Value: "10.0.0.9"}},
			code: CodeCommandNotFound, msg: "no such command: 'cloneCollection'"},
		{name: "find is unchanged", test: true, cmd: bson.D{{Key: "find", Value: "orders"}, {Key: "filter", Value: bson.D{{Key: "db", Value: "prod"}}}}, code: upstream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := policyset.New()
			pol.SetDatabase("prod", false)
			pol.SetDatabase("analytics_test", true)
			pol.SetDatabase("scratch_test", true)
			if tc.adminTest {
				pol.SetDatabase("admin", true)
			}
			rec := &recorder{}
			s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
			env := newEnv(nil, rec)
			tok := mint(t, core.AllScopes, time.Hour)
			if tc.test {
				tok, _ = mintClaims(t, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})
			}
			if doc, _ := roundTrip(t, s, env, opMsg(t, 1, 0, plainStart(tok))); code(doc) != 0 {
				t.Fatalf("saslStart: %v", doc)
			}
			db := tc.db
			if db == "" {
				db = "analytics_test"
			}
			cmd := append(tc.cmd, bson.E{Key: "$db", Value: db})
			msg := opMsg(t, 2, 0, cmd)
			if tc.seq != nil {
				id := tc.seqID
				if id == "" {
					id = "pipeline"
				}
				msg = opMsgSeq(t, 2, cmd, id, tc.seq...)
			}
			doc, act := roundTrip(t, s, env, msg)
			if code(doc) != tc.code || !strings.Contains(errmsg(doc), tc.msg) || act != netio.Continue {
				t.Fatalf("code %d, want %d; errmsg %q, want it to contain %q", code(doc), tc.code, errmsg(doc), tc.msg)
			}
			forbidden := len(rec.auths) > 1 && netio.OutcomeOf(rec.auths[len(rec.auths)-1]) == netio.OutcomeForbidden
			if forbidden != (tc.code == denied) {
				t.Fatalf("outcomes %v", rec.auths)
			}
			// The session carries on.
			if doc, _ := roundTrip(t, s, env, opMsg(t, 3, 0, cmdOn("ping", 1, "admin"))); code(doc) != 0 {
				t.Fatalf("ping after: %v", doc)
			}
		})
	}
}

// TestCrossDatabaseScopeFirst: a token without the scope a cross-database
// command needs gets the scope refusal, as for any command.
func TestCrossDatabaseScopeFirst(t *testing.T) {
	pol := policyset.New()
	pol.SetDatabase("analytics_test", true)
	s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	env := newEnv(nil, nil)
	tok, _ := mintClaims(t, core.Claims{Type: core.TypeTest, Scopes: 1 << core.ScopeDatabaseRead, Flags: core.FlagTestOnly})
	roundTrip(t, s, env, opMsg(t, 1, 0, plainStart(tok)))
	doc, _ := roundTrip(t, s, env, opMsg(t, 2, 0, bson.D{{Key: "aggregate", Value: "c"},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$out", Value: bson.D{{Key: "db", Value: "prod"}, {Key: "coll", Value: "x"}}}}}}, {Key: "$db", Value: "analytics_test"}}))
	if code(doc) != CodeUnauthorized || !strings.HasSuffix(errmsg(doc), core.ForbiddenError(core.ScopeDatabaseWrite).Message) {
		t.Fatalf("got %v", doc)
	}
}

// TestCrossDatabaseAllocs: an aggregate whose nested stages name other
// (test) databases is walked and checked without allocating.
func TestCrossDatabaseAllocs(t *testing.T) {
	pol := policyset.New()
	pol.SetDatabase("analytics_test", true)
	pol.SetDatabase("scratch_test", true)
	s := New(Options{Policy: pol}).NewSession(&netio.ConnInfo{PlaintextOK: true}).(*Session)
	env := newEnv(core.NewMemoryRevocations(), nil)
	tok, _ := mintClaims(t, core.Claims{Type: core.TypeTest, Scopes: core.AllScopes, Flags: core.FlagTestOnly})
	roundTrip(t, s, env, opMsg(t, 1, 0, plainStart(tok)))
	other := bson.D{{Key: "db", Value: "scratch_test"}, {Key: "coll", Value: "u"}}
	agg := opMsg(t, 2, 0, bson.D{{Key: "aggregate", Value: "orders"}, {Key: "pipeline", Value: bson.A{
		bson.D{{Key: "$match", Value: bson.D{{Key: "a", Value: 1}}}},
		bson.D{{Key: "$facet", Value: bson.D{{Key: "f", Value: bson.A{bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: other}, {Key: "as", Value: "j"}}}}}}}}},
		bson.D{{Key: "$unionWith", Value: bson.D{{Key: "coll", Value: "c"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$project", Value: bson.D{{Key: "a", Value: 1}}}}}}}}},
		bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: other}}}},
	}}, {Key: "cursor", Value: bson.D{}}, {Key: "$db", Value: "analytics_test"}})
	out := make([]byte, 0, 4096)
	if a := testing.AllocsPerRun(200, func() { _, out, _ = s.Handle(env, agg, out[:0]) }); a != 0 {
		t.Fatalf("%.1f allocs per checked aggregate", a)
	}
	if _, doc := reply(t, out); code(doc) != CodeCommandNotSupported {
		t.Fatalf("got %v", doc)
	}
}
