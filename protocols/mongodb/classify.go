package mongodb

import (
	"github.com/heliosdb/auth/core"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Class says what a command needs before the gateway runs or forwards it.
type Class uint8

// Command classes.
const (
	// ClassUnknown: a command the classifier does not know. It is never
	// forwarded (fail closed).
	ClassUnknown Class = iota
	// ClassHandshake: allowed before authentication (hello, isMaster, ping,
	// buildInfo) — monitoring connections never authenticate.
	ClassHandshake
	// ClassAuth: the authentication conversation itself.
	ClassAuth
	// ClassSession: needs authentication but no scope (connectionStatus,
	// endSessions, the diagnostics mongosh asks for on start).
	ClassSession
	// ClassScoped: needs authentication and the scope Classify returns.
	ClassScoped
)

// commandTable maps a command name to its class and, for ClassScoped, the
// scope it needs. Names are case-sensitive, as mongod's are.
var commandTable = map[string]struct {
	class Class
	scope core.Scope
}{
	"hello": {class: ClassHandshake}, "isMaster": {class: ClassHandshake}, "ismaster": {class: ClassHandshake},
	"ping": {class: ClassHandshake}, "buildInfo": {class: ClassHandshake}, "buildinfo": {class: ClassHandshake},

	"saslStart": {class: ClassAuth}, "saslContinue": {class: ClassAuth}, "authenticate": {class: ClassAuth},
	"getnonce": {class: ClassAuth}, "logout": {class: ClassAuth},

	"connectionStatus": {class: ClassSession}, "endSessions": {class: ClassSession},
	"refreshSessions": {class: ClassSession}, "killSessions": {class: ClassSession},
	"getParameter": {class: ClassSession}, "getCmdLineOpts": {class: ClassSession}, "atlasVersion": {class: ClassSession},
	"getLog": {class: ClassSession}, "whatsmyuri": {class: ClassSession}, "hostInfo": {class: ClassSession},
	"getFreeMonitoringStatus": {class: ClassSession}, "listCommands": {class: ClassSession},
	"getDefaultRWConcern": {class: ClassSession}, "isdbgrid": {class: ClassSession},

	// Reads.
	"find": {ClassScoped, core.ScopeDatabaseRead}, "aggregate": {ClassScoped, core.ScopeDatabaseRead},
	"count": {ClassScoped, core.ScopeDatabaseRead}, "distinct": {ClassScoped, core.ScopeDatabaseRead},
	"getMore": {ClassScoped, core.ScopeDatabaseRead}, "killCursors": {ClassScoped, core.ScopeDatabaseRead},
	"listDatabases": {ClassScoped, core.ScopeDatabaseRead}, "explain": {ClassScoped, core.ScopeDatabaseRead},
	"dbHash": {ClassScoped, core.ScopeDatabaseRead}, "geoSearch": {ClassScoped, core.ScopeDatabaseRead},
	// Writes.
	"insert": {ClassScoped, core.ScopeDatabaseWrite}, "update": {ClassScoped, core.ScopeDatabaseWrite},
	"delete": {ClassScoped, core.ScopeDatabaseWrite}, "findAndModify": {ClassScoped, core.ScopeDatabaseWrite},
	"findandmodify": {ClassScoped, core.ScopeDatabaseWrite}, "bulkWrite": {ClassScoped, core.ScopeDatabaseWrite},
	"commitTransaction": {ClassScoped, core.ScopeDatabaseWrite}, "abortTransaction": {ClassScoped, core.ScopeDatabaseWrite},
	"mapReduce": {ClassScoped, core.ScopeDatabaseWrite},
	// Schema.
	"listCollections": {ClassScoped, core.ScopeSchemaRead}, "listIndexes": {ClassScoped, core.ScopeSchemaRead},
	"collStats": {ClassScoped, core.ScopeSchemaRead}, "dbStats": {ClassScoped, core.ScopeSchemaRead},
	"validate": {ClassScoped, core.ScopeSchemaRead},
	"create":   {ClassScoped, core.ScopeSchemaWrite}, "createIndexes": {ClassScoped, core.ScopeSchemaWrite},
	"drop": {ClassScoped, core.ScopeSchemaWrite}, "dropIndexes": {ClassScoped, core.ScopeSchemaWrite},
	"collMod": {ClassScoped, core.ScopeSchemaWrite}, "renameCollection": {ClassScoped, core.ScopeSchemaWrite},
	"createView": {ClassScoped, core.ScopeSchemaWrite},
	// Databases.
	"dropDatabase": {ClassScoped, core.ScopeDatabaseDelete},
	// Metrics.
	"serverStatus": {ClassScoped, core.ScopeMetricsRead}, "top": {ClassScoped, core.ScopeMetricsRead},
	"currentOp": {ClassScoped, core.ScopeMetricsRead}, "profile": {ClassScoped, core.ScopeMetricsRead},
}

// Classify returns a command's class and, for ClassScoped, the scope it
// needs. An aggregate whose pipeline writes ($out, $merge) needs
// database:write. name is the command document's first key.
func Classify(name []byte, cmd bsoncore.Document) (Class, core.Scope) {
	e, ok := commandTable[string(name)] // no allocation: map lookup by []byte conversion
	if !ok {
		return ClassUnknown, 0
	}
	if string(name) == "aggregate" && pipelineWrites(cmd) {
		return ClassScoped, core.ScopeDatabaseWrite
	}
	return e.class, e.scope
}

// pipelineWrites reports whether an aggregate's pipeline has a $out or
// $merge stage. It reads the validated command in place, without
// allocating.
func pipelineWrites(cmd bsoncore.Document) bool {
	arr, ok := cmd.Lookup("pipeline").ArrayOK()
	if !ok {
		return false
	}
	rem := arr[4 : len(arr)-1]
	for len(rem) > 0 {
		el, rest, ok := bsoncore.ReadElement(rem)
		if !ok {
			return true // validated, so this cannot happen: assume the worst
		}
		rem = rest
		stage, ok := el.Value().DocumentOK()
		if !ok {
			continue
		}
		if first, err := stage.IndexErr(0); err == nil {
			if k := string(first.KeyBytes()); k == "$out" || k == "$merge" {
				return true
			}
		}
	}
	return false
}
