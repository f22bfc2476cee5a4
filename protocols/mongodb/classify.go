package mongodb

import (
	"github.com/heliosdb/auth/core"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Class says what a command needs before the gateway runs or forwards it.
type Class uint8

// Command classes.
const (
	// ClassUnknown: a command the classifier does not know (not in
	// MongoDB 7's command list, or removed before it). It is never
	// forwarded (fail closed): "no such command", as mongod answers.
	ClassUnknown Class = iota
	// ClassHandshake: allowed before authentication (hello, isMaster, ping,
	// buildInfo) — monitoring connections never authenticate.
	ClassHandshake
	// ClassAuth: the authentication conversation itself.
	ClassAuth
	// ClassSession: needs authentication but no scope, and is answered by
	// the gateway itself, also in proxy mode (connectionStatus,
	// endSessions, the diagnostics mongosh asks for on start).
	ClassSession
	// ClassScoped: needs authentication and the scope Classify returns; in
	// proxy mode it is forwarded to the upstream server.
	ClassScoped
	// ClassRefused: a MongoDB 7 command that administers the server
	// (users and roles, replication, sharding, shutdown, server parameters
	// …). No token may run it: it is refused with code 13 and never
	// forwarded. In proxy mode the classifier is the only wall in front of
	// an upstream that enforces no roles (FerretDB 1.x), so what a token
	// could do to the server itself is refused here, by name.
	ClassRefused
)

// command is one entry of commandTable.
type command struct {
	class Class
	scope core.Scope
	// server: a ClassScoped command that is about the server rather than
	// one database's collections, so that in proxy mode it may run on
	// admin (listDatabases, serverStatus, transactions' commit and abort,
	// renameCollection, whose namespaces are checked on their own). Other
	// data commands on admin, local and config — the upstream's own
	// databases, which hold its users and its replication state — are
	// refused in proxy mode.
	server bool
	// testToo: a server command whose reach is bounded by other checks, so
	// that in proxy mode a test token may run it on admin too
	// (listDatabases lists test databases only for it, a transaction
	// commits what the session's checked commands did, renameCollection's
	// namespaces are checked on their own); the server's metrics, which
	// show every database's operations, are not among them.
	testToo bool
}

// Shorthands for the table.
var (
	handshake = command{class: ClassHandshake}
	auth      = command{class: ClassAuth}
	session   = command{class: ClassSession}
	refused   = command{class: ClassRefused}
)

func scoped(s core.Scope) command { return command{class: ClassScoped, scope: s} }
func serverScoped(s core.Scope) command {
	return command{class: ClassScoped, scope: s, server: true, testToo: true}
}
func serverMetrics(s core.Scope) command { return command{class: ClassScoped, scope: s, server: true} }

// commandTable maps a command name to its class and, for ClassScoped, the
// scope it needs. Names are case-sensitive, as mongod's are. Every command
// of MongoDB 7.0's command list is here (TestCommandTableIsExhaustive), and
// so are the older spellings drivers still send (isMaster, findandmodify).
var commandTable = map[string]command{
	"hello": handshake, "isMaster": handshake, "ismaster": handshake,
	"ping": handshake, "buildInfo": handshake, "buildinfo": handshake,

	"saslStart": auth, "saslContinue": auth, "authenticate": auth, "getnonce": auth, "logout": auth,

	"connectionStatus": session, "endSessions": session, "refreshSessions": session, "killSessions": session,
	"startSession": session, "getParameter": session, "getCmdLineOpts": session, "atlasVersion": session,
	"getLog": session, "whatsmyuri": session, "hostInfo": session, "getFreeMonitoringStatus": session,
	"listCommands": session, "getDefaultRWConcern": session, "isdbgrid": session, "features": session,
	"driverOIDTest": session, "availableQueryOptions": session,

	// Reads.
	"find": scoped(core.ScopeDatabaseRead), "aggregate": scoped(core.ScopeDatabaseRead),
	"count": scoped(core.ScopeDatabaseRead), "distinct": scoped(core.ScopeDatabaseRead),
	"getMore": scoped(core.ScopeDatabaseRead), "killCursors": scoped(core.ScopeDatabaseRead),
	"listDatabases": serverScoped(core.ScopeDatabaseRead), "explain": scoped(core.ScopeDatabaseRead),
	"dbHash": scoped(core.ScopeDatabaseRead), "geoSearch": scoped(core.ScopeDatabaseRead),
	"dataSize": scoped(core.ScopeDatabaseRead), "filemd5": scoped(core.ScopeDatabaseRead),
	// Writes. mapReduce may write its output (out), so it is a write
	// whatever its out says.
	"insert": scoped(core.ScopeDatabaseWrite), "update": scoped(core.ScopeDatabaseWrite),
	"delete": scoped(core.ScopeDatabaseWrite), "findAndModify": scoped(core.ScopeDatabaseWrite),
	"findandmodify": scoped(core.ScopeDatabaseWrite), "mapReduce": scoped(core.ScopeDatabaseWrite),
	"mapreduce":         scoped(core.ScopeDatabaseWrite),
	"commitTransaction": serverScoped(core.ScopeDatabaseWrite), "abortTransaction": serverScoped(core.ScopeDatabaseWrite),
	// Schema.
	"listCollections": scoped(core.ScopeSchemaRead), "listIndexes": scoped(core.ScopeSchemaRead),
	"collStats": scoped(core.ScopeSchemaRead), "dbStats": scoped(core.ScopeSchemaRead),
	"validate": scoped(core.ScopeSchemaRead), "listSearchIndexes": scoped(core.ScopeSchemaRead),
	"planCacheListFilters": scoped(core.ScopeSchemaRead), "validateDBMetadata": scoped(core.ScopeSchemaRead),
	"create": scoped(core.ScopeSchemaWrite), "createIndexes": scoped(core.ScopeSchemaWrite),
	"drop": scoped(core.ScopeSchemaWrite), "dropIndexes": scoped(core.ScopeSchemaWrite),
	"collMod": scoped(core.ScopeSchemaWrite), "renameCollection": serverScoped(core.ScopeSchemaWrite),
	"createView": scoped(core.ScopeSchemaWrite), "convertToCapped": scoped(core.ScopeSchemaWrite),
	"cloneCollectionAsCapped": scoped(core.ScopeSchemaWrite), "reIndex": scoped(core.ScopeSchemaWrite),
	"setIndexCommitQuorum": scoped(core.ScopeSchemaWrite), "createSearchIndexes": scoped(core.ScopeSchemaWrite),
	"dropSearchIndex": scoped(core.ScopeSchemaWrite), "updateSearchIndex": scoped(core.ScopeSchemaWrite),
	"planCacheClear": scoped(core.ScopeSchemaWrite), "planCacheClearFilters": scoped(core.ScopeSchemaWrite),
	"planCacheSetFilter": scoped(core.ScopeSchemaWrite),
	// Databases.
	"dropDatabase": scoped(core.ScopeDatabaseDelete),
	// Metrics.
	"serverStatus": serverMetrics(core.ScopeMetricsRead), "top": serverMetrics(core.ScopeMetricsRead),
	"currentOp": serverMetrics(core.ScopeMetricsRead), "profile": scoped(core.ScopeMetricsRead),
	"connPoolStats": serverMetrics(core.ScopeMetricsRead), "shardConnPoolStats": serverMetrics(core.ScopeMetricsRead),
	"lockInfo": serverMetrics(core.ScopeMetricsRead),

	// Refused: the server's own administration.
	// Users and roles (the upstream's, not HeliosDB's).
	"createUser": refused, "updateUser": refused, "dropUser": refused, "dropAllUsersFromDatabase": refused,
	"grantRolesToUser": refused, "revokeRolesFromUser": refused, "usersInfo": refused,
	"createRole": refused, "updateRole": refused, "dropRole": refused, "dropAllRolesFromDatabase": refused,
	"grantPrivilegesToRole": refused, "revokePrivilegesFromRole": refused, "grantRolesToRole": refused,
	"revokeRolesFromRole": refused, "rolesInfo": refused, "invalidateUserCache": refused,
	// Replication.
	"applyOps": refused, "appendOplogNote": refused, "replSetAbortPrimaryCatchUp": refused, "replSetFreeze": refused,
	"replSetGetConfig": refused, "replSetGetStatus": refused, "replSetInitiate": refused, "replSetMaintenance": refused,
	"replSetReconfig": refused, "replSetResizeOplog": refused, "replSetStepDown": refused, "replSetSyncFrom": refused,
	"replSetUpdatePosition": refused, "replSetHeartbeat": refused, "replSetRequestVotes": refused,
	// Sharding.
	"abortReshardCollection": refused, "addShard": refused, "addShardToZone": refused, "analyzeShardKey": refused,
	"balancerCollectionStatus": refused, "balancerStart": refused, "balancerStatus": refused, "balancerStop": refused,
	"checkMetadataConsistency": refused, "checkShardingIndex": refused, "cleanupOrphaned": refused,
	"cleanupReshardCollection": refused, "clearJumboFlag": refused, "commitReshardCollection": refused,
	"configureCollectionBalancing": refused, "configureQueryAnalyzer": refused, "enableSharding": refused,
	"flushRouterConfig": refused, "getShardMap": refused, "getShardVersion": refused, "listShards": refused,
	"medianKey": refused, "mergeAllChunksOnShard": refused, "mergeChunks": refused, "moveChunk": refused,
	"movePrimary": refused, "moveRange": refused, "refineCollectionShardKey": refused, "removeShard": refused,
	"removeShardFromZone": refused, "reshardCollection": refused, "setAllowMigrations": refused,
	"setShardVersion": refused, "shardCollection": refused, "shardingState": refused, "split": refused,
	"splitChunk": refused, "splitVector": refused, "updateZoneKeyRange": refused,
	"transitionFromDedicatedConfigServer": refused, "transitionToDedicatedConfigServer": refused,
	// Sessions of every user, and operations of others.
	"killAllSessions": refused, "killAllSessionsByPattern": refused, "killOp": refused,
	// Server administration and maintenance.
	"shutdown": refused, "fsync": refused, "fsyncUnlock": refused, "setParameter": refused,
	"setFeatureCompatibilityVersion": refused, "setClusterParameter": refused, "getClusterParameter": refused,
	"setDefaultRWConcern": refused, "logRotate": refused, "rotateCertificates": refused,
	"setUserWriteBlockMode": refused, "dropConnections": refused, "compact": refused,
	"compactStructuredEncryptionData": refused, "cleanupStructuredEncryptionData": refused,
	"getDiagnosticData": refused, "setFreeMonitoring": refused, "logApplicationMessage": refused,
	"getAuditConfig": refused, "setAuditConfig": refused, "clearLog": refused, "netstat": refused,
	"_isSelf": refused, "configureFailPoint": refused, "waitForFailPoint": refused, "sleep": refused,
	"dbCheck": refused, "resetError": refused, "getLastError": refused, "getPrevError": refused,
	// bulkWrite (MongoDB 8) writes to the namespaces of its nsInfo, on any
	// database, from admin; drivers send it only to servers of wire
	// version 25 and up.
	"bulkWrite": refused,
}

// Classify returns a command's class and, for ClassScoped, the scope it
// needs. name is the command document's first key. Some commands need
// more than their name says:
//
//   - aggregate with $out or $merge anywhere in its pipeline — inside
//     $facet, a $lookup's or $unionWith's pipeline, at any depth — needs
//     database:write;
//   - explain needs what the command it explains needs (and is refused or
//     unknown when that one is);
//   - profile with a level other than -1 changes the server's profiler:
//     refused.
//
// It reads the validated command in place, without allocating.
func Classify(name []byte, cmd bsoncore.Document) (Class, core.Scope) {
	e, ok := commandTable[string(name)] // no allocation: map lookup by []byte conversion
	if !ok {
		return ClassUnknown, 0
	}
	switch string(name) {
	case "aggregate":
		if pipelineWrites(cmd.Lookup("pipeline")) {
			return ClassScoped, core.ScopeDatabaseWrite
		}
	case "explain":
		inner, ok := cmd.Lookup("explain").DocumentOK()
		if !ok {
			return e.class, e.scope // mongod answers the malformed command
		}
		first, err := inner.IndexErr(0)
		if err != nil {
			return e.class, e.scope
		}
		switch c, s := Classify(first.KeyBytes(), inner); c {
		case ClassScoped, ClassRefused:
			return c, s
		}
		return ClassUnknown, 0 // only data commands can be explained
	case "profile":
		if level, ok := cmd.Lookup("profile").AsInt64OK(); !ok || level != -1 {
			return ClassRefused, 0
		}
	}
	return e.class, e.scope
}

// isServerCommand reports whether a ClassScoped command may run on admin,
// local or config in proxy mode (command.server).
func isServerCommand(name []byte) bool { return commandTable[string(name)].server }

// isTestServerCommand reports whether a test token may run a server
// command on admin in proxy mode (command.testToo).
func isTestServerCommand(name []byte) bool { return commandTable[string(name)].testToo }

// pipelineWrites reports whether a pipeline (or any value inside one) has
// a $out or $merge stage at any depth: a stage of its own, or one inside a
// $facet, a $lookup's or $unionWith's pipeline, or anywhere else a
// document may stand. A key spelled $out or $merge where no stage can be
// counts too: reading it as a write fails closed. The BSON was validated,
// so nesting is bounded.
func pipelineWrites(v bsoncore.Value) bool {
	isDoc := v.Type == bsoncore.TypeEmbeddedDocument
	if !isDoc && v.Type != bsoncore.TypeArray {
		return false
	}
	if len(v.Data) < minDocumentLen {
		return true // validated, so this cannot happen: assume the worst
	}
	rem := v.Data[4 : len(v.Data)-1]
	for len(rem) > 0 {
		el, rest, ok := bsoncore.ReadElement(rem)
		if !ok {
			return true
		}
		rem = rest
		if isDoc {
			if k := string(el.KeyBytes()); k == "$out" || k == "$merge" {
				return true
			}
		}
		if pipelineWrites(el.Value()) {
			return true
		}
	}
	return false
}
