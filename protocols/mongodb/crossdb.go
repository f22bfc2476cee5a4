package mongodb

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/heliosdb/auth/core"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// This file finds the databases a command names besides its $db — the
// stages of an aggregation pipeline that read or write another database
// ($out, $merge, $lookup, $graphLookup, $unionWith, at any depth: inside
// $facet, a $lookup's or $unionWith's pipeline, a $merge's whenMatched),
// the pipeline of a view (create, collMod), mapReduce's out.db, both
// namespaces of renameCollection, and the command inside explain — and
// checks each against the registry as $db is checked. It reads the
// validated command in place and allocates nothing unless it refuses.

// crossStages are the aggregation stages that may name another database.
var crossStages = [...]string{"$out", "$merge", "$lookup", "$graphLookup", "$unionWith"}

// crossRef is the database a refused command names, and what names it.
type crossRef struct {
	db []byte
	// notString: named by a value that is not a string, which cannot be
	// checked (a test token is refused).
	notString bool
	// sequence: the command carries an OP_MSG document sequence (kind 1),
	// which the check does not read (a test token is refused).
	sequence bool
	stage    []byte // the pipeline stage that names it ($out, …), or nil
	field    string // otherwise the field that names it
	// unregistered: in proxy mode, a database that is not registered (or
	// is one of the server's own), which no token may reach by name.
	unregistered bool
}

// crossCheck walks one command for the databases it names.
type crossCheck struct {
	p   core.Policy
	c   *core.Claims
	ref crossRef
	err error
	// strict: proxy mode, where a named database must also be registered
	// (not admin, local or config, which hold the upstream's own state).
	strict bool
}

// crossDatabases returns the first database besides $db that cmd (named
// name, with seqs kind-1 document sequences) names and the token may not
// reach, with the policy's error; err is nil when every one is allowed.
func (s *Session) crossDatabases(name []byte, cmd bsoncore.Document, seqs int) (crossRef, error) {
	k := crossCheck{p: s.p.policy, c: &s.claims, strict: s.p.up != nil}
	if seqs > 0 && namesDatabases(name) {
		// A kind-1 sequence is an array field of the command (the
		// OP_MSG specification); the check reads only the body, so a
		// command whose arrays may name databases is checked as naming
		// one it cannot read.
		k.ref.sequence = true
		k.allow(nil)
	}
	if k.err == nil {
		k.command(name, cmd)
	}
	return k.ref, k.err
}

// namesDatabases reports whether a command can name a database besides
// its $db (the commands crossCheck.command reads).
func namesDatabases(name []byte) bool {
	switch string(name) {
	case "aggregate", "create", "collMod", "createView", "mapReduce", "renameCollection", "explain":
		return true
	}
	return false
}

// command checks the databases a command names; false stops the walk at
// the first refusal.
func (k *crossCheck) command(name []byte, cmd bsoncore.Document) bool {
	switch string(name) {
	case "aggregate", "create", "collMod", "createView":
		return k.walk(cmd.Lookup("pipeline"))
	case "mapReduce":
		if out, ok := cmd.Lookup("out").DocumentOK(); ok {
			return k.value(out.Lookup("db"), nil, "mapReduce's out.db")
		}
	case "renameCollection":
		first, err := cmd.IndexErr(0)
		if err != nil {
			return true
		}
		return k.namespace(first.Value(), "renameCollection's source namespace") &&
			k.namespace(cmd.Lookup("to"), "renameCollection's target namespace (to)")
	case "explain":
		if inner, ok := cmd.Lookup("explain").DocumentOK(); ok {
			if first, err := inner.IndexErr(0); err == nil {
				return k.command(first.KeyBytes(), inner)
			}
		}
	}
	return true
}

// walk checks every pipeline stage in v (a pipeline, a stage, or any value
// inside one), at every depth; the BSON was validated, so nesting is
// bounded.
func (k *crossCheck) walk(v bsoncore.Value) bool {
	isDoc := v.Type == bsoncore.TypeEmbeddedDocument
	if !isDoc && v.Type != bsoncore.TypeArray {
		return true
	}
	rem := v.Data[4 : len(v.Data)-1]
	for len(rem) > 0 {
		el, rest, ok := bsoncore.ReadElement(rem)
		if !ok {
			// Validated, so this cannot happen; refuse a test token
			// rather than skip what could not be read.
			k.ref = crossRef{field: "a pipeline that could not be read", notString: true}
			return k.allow(nil)
		}
		rem = rest
		val := el.Value()
		if isDoc && !k.stage(el.KeyBytes(), val) {
			return false
		}
		if !k.walk(val) {
			return false
		}
	}
	return true
}

// stage checks a stage that may name another database: $out: {db, coll},
// $merge: {into: {db, coll}}, $lookup / $graphLookup: {from: {db, coll}},
// and a db field in any of their forms. The string forms name a
// collection of $db.
func (k *crossCheck) stage(key []byte, v bsoncore.Value) bool {
	known := false
	for _, s := range crossStages {
		if string(key) == s {
			known = true
			break
		}
	}
	if !known {
		return true
	}
	d, ok := v.DocumentOK()
	if !ok {
		return true
	}
	if !k.value(d.Lookup("db"), key, "") {
		return false
	}
	for _, f := range [...]string{"into", "from", "coll"} {
		if sub, ok := d.Lookup(f).DocumentOK(); ok && !k.value(sub.Lookup("db"), key, "") {
			return false
		}
	}
	return true
}

// namespace checks the database of a "db.collection" namespace.
func (k *crossCheck) namespace(v bsoncore.Value, field string) bool {
	if v.Type == bsoncore.TypeString {
		ns := stringBytes(v)
		if i := bytes.IndexByte(ns, '.'); i >= 0 {
			ns = ns[:i]
		}
		k.ref = crossRef{db: ns, field: field}
		return k.allow(ns)
	}
	return k.value(v, nil, field)
}

// value checks a database named by v (absent: none).
func (k *crossCheck) value(v bsoncore.Value, stage []byte, field string) bool {
	if v.Type == 0 {
		return true
	}
	k.ref.stage, k.ref.field = stage, field
	if v.Type != bsoncore.TypeString {
		k.ref.db, k.ref.notString = nil, true
		return k.allow(nil)
	}
	k.ref.db = stringBytes(v)
	return k.allow(k.ref.db)
}

// allow applies the registry rule to db; false (with k.err set) refuses.
// In proxy mode db must also be a registered database.
func (k *crossCheck) allow(db []byte) bool {
	k.err = core.AllowDatabase(k.p, k.c, db)
	if k.err == nil && k.strict && (db == nil || isServerDB(db) || !core.KnownDatabase(k.p, db)) {
		k.err, k.ref.unregistered = errUnregistered, true
	}
	return k.err == nil
}

// errUnregistered is the error observed, in proxy mode, for a command that
// names a database that is not registered.
var errUnregistered = &core.Error{Kind: core.KindForbidden, Message: "The database is not a registered HeliosDB database",
	Detail: "a command may name only registered databases besides its $db"}

// crossMessage words the refusal of a command that names a database the
// token may not reach, as mongod words a missing privilege: "not authorized
// on analytics_test to execute command { aggregate: "c", $db:
// "analytics_test" }: Test tokens can only access test databases (its $out
// stage names database "main", which is not registered as a test database;
// …)".
func crossMessage(db []byte, cmd bsoncore.Document, ref crossRef, err error) string {
	reason := core.ErrTestDatabaseOnly.Message
	if te, ok := err.(*core.Error); ok {
		reason = te.Message
	}
	var what string
	switch {
	case ref.sequence:
		what = "it carries an OP_MSG document sequence (kind 1), whose databases this gateway does not read; send the command's arrays in its body"
	case ref.stage != nil && ref.notString:
		what = "its " + printable(ref.stage) + " stage names a database by a value that is not a string, which cannot be checked"
	case ref.notString:
		what = ref.field + " names a database by a value that is not a string, which cannot be checked"
	default:
		by := ref.field
		if ref.stage != nil {
			by = "its " + printable(ref.stage) + " stage"
		}
		what = by + " names database " + strconv.Quote(printable(ref.db)) + ", which is not registered as a test database"
	}
	if ref.unregistered {
		switch {
		case ref.notString || ref.sequence:
		case ref.stage != nil:
			what = "its " + printable(ref.stage) + " stage names database " + strconv.Quote(printable(ref.db))
		default:
			what = ref.field + " names database " + strconv.Quote(printable(ref.db))
		}
		msg := "not authorized on " + printable(db) + " to execute command " + describeCommand(cmd, db) + ": " + what +
			", which is not a registered HeliosDB database (GET /v1/databases lists them; admin, local and config belong to the upstream server)"
		return strings.ToValidUTF8(msg, "\uFFFD")
	}
	msg := "not authorized on " + printable(db) + " to execute command " + describeCommand(cmd, db) + ": " + reason +
		" (" + what + "; hdb_test_ tokens may use only databases created with \"test\": true)"
	return strings.ToValidUTF8(msg, "\uFFFD")
}
