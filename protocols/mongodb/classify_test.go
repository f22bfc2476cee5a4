package mongodb

import (
	"testing"

	"github.com/heliosdb/auth/core"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// mongo7Commands is MongoDB 7.0's command list (the manual's "Database
// Commands" reference: aggregation, geospatial, query and write, plan
// cache, authentication, user and role management, replication, sharding,
// sessions, administration, diagnostics, auditing, Atlas Search), plus the
// commands the server runs for drivers that the list leaves out
// (saslStart, saslContinue, startSession, …).
var mongo7Commands = []string{
	// Aggregation.
	"aggregate", "count", "distinct", "mapReduce",
	// Geospatial.
	"geoSearch",
	// Query and write operations.
	"delete", "find", "findAndModify", "getLastError", "getMore", "insert", "resetError", "update",
	// Query plan cache.
	"planCacheClear", "planCacheClearFilters", "planCacheListFilters", "planCacheSetFilter",
	// Authentication.
	"authenticate", "getnonce", "logout", "saslStart", "saslContinue",
	// User management.
	"createUser", "dropAllUsersFromDatabase", "dropUser", "grantRolesToUser", "revokeRolesFromUser", "updateUser", "usersInfo",
	// Role management.
	"createRole", "dropRole", "dropAllRolesFromDatabase", "grantPrivilegesToRole", "grantRolesToRole", "invalidateUserCache",
	"revokePrivilegesFromRole", "revokeRolesFromRole", "rolesInfo", "updateRole",
	// Replication.
	"applyOps", "hello", "isMaster", "replSetAbortPrimaryCatchUp", "replSetFreeze", "replSetGetConfig", "replSetGetStatus",
	"replSetInitiate", "replSetMaintenance", "replSetReconfig", "replSetResizeOplog", "replSetStepDown", "replSetSyncFrom",
	"appendOplogNote",
	// Sharding.
	"abortReshardCollection", "addShard", "addShardToZone", "analyzeShardKey", "balancerCollectionStatus", "balancerStart",
	"balancerStatus", "balancerStop", "checkMetadataConsistency", "checkShardingIndex", "cleanupOrphaned",
	"cleanupReshardCollection", "clearJumboFlag", "commitReshardCollection", "configureCollectionBalancing",
	"configureQueryAnalyzer", "enableSharding", "flushRouterConfig", "getShardMap", "getShardVersion", "isdbgrid",
	"listShards", "medianKey", "mergeAllChunksOnShard", "mergeChunks", "moveChunk", "movePrimary", "moveRange",
	"refineCollectionShardKey", "removeShard", "removeShardFromZone", "reshardCollection", "setAllowMigrations",
	"setShardVersion", "shardCollection", "shardingState", "split", "splitChunk", "splitVector",
	"transitionFromDedicatedConfigServer", "transitionToDedicatedConfigServer", "updateZoneKeyRange",
	// Sessions.
	"abortTransaction", "commitTransaction", "endSessions", "killAllSessions", "killAllSessionsByPattern",
	"killSessions", "refreshSessions", "startSession",
	// Administration.
	"cloneCollectionAsCapped", "collMod", "compact", "compactStructuredEncryptionData", "convertToCapped", "create",
	"createIndexes", "currentOp", "drop", "dropDatabase", "dropConnections", "dropIndexes", "filemd5", "fsync",
	"fsyncUnlock", "getDefaultRWConcern", "getClusterParameter", "getParameter", "killCursors", "killOp",
	"listCollections", "listDatabases", "listIndexes", "logRotate", "reIndex", "renameCollection",
	"rotateCertificates", "setFeatureCompatibilityVersion", "setIndexCommitQuorum", "setClusterParameter",
	"setDefaultRWConcern", "setParameter", "setUserWriteBlockMode", "shutdown",
	// Diagnostics.
	"buildInfo", "collStats", "connPoolStats", "connectionStatus", "dataSize", "dbHash", "dbStats", "driverOIDTest",
	"explain", "features", "getCmdLineOpts", "getLog", "hostInfo", "_isSelf", "listCommands", "lockInfo", "netstat",
	"ping", "profile", "serverStatus", "shardConnPoolStats", "top", "validate", "validateDBMetadata", "whatsmyuri",
	// Free monitoring.
	"getFreeMonitoringStatus", "setFreeMonitoring",
	// Auditing.
	"logApplicationMessage",
	// Atlas Search.
	"createSearchIndexes", "dropSearchIndex", "listSearchIndexes", "updateSearchIndex",
}

// TestCommandTableIsExhaustive: every command of MongoDB 7 is classified
// or refused by name; none is left to the unknown class.
func TestCommandTableIsExhaustive(t *testing.T) {
	for _, name := range mongo7Commands {
		if _, ok := commandTable[name]; !ok {
			t.Errorf("%s is in MongoDB 7's command list but not in the classifier's table", name)
		}
	}
	// The administrative ones are refused whatever the token.
	for _, name := range []string{"shutdown", "createUser", "grantRolesToUser", "replSetReconfig", "shardCollection",
		"setParameter", "killOp", "fsync", "applyOps", "killAllSessions", "setFeatureCompatibilityVersion", "bulkWrite"} {
		if c, _ := Classify([]byte(name), doc(t, bson.D{{Key: name, Value: 1}})); c != ClassRefused {
			t.Errorf("%s: class %d, want refused", name, c)
		}
	}
	// Removed before MongoDB 7: unknown, as mongod answers.
	for _, name := range []string{"copydb", "clone", "cloneCollection", "eval", "group", "geoNear", "parallelCollectionScan"} {
		if c, _ := Classify([]byte(name), doc(t, bson.D{{Key: name, Value: 1}})); c != ClassUnknown {
			t.Errorf("%s: class %d, want unknown", name, c)
		}
	}
}

func doc(t *testing.T, d bson.D) bsoncore.Document {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClassifyAggregateWritesAnywhere: $out and $merge make an aggregate a
// write at any depth of its pipeline.
func TestClassifyAggregateWritesAnywhere(t *testing.T) {
	stage := func(k string, v any) bson.D { return bson.D{{Key: k, Value: v}} }
	for _, tc := range []struct {
		name     string
		pipeline bson.A
		want     core.Scope
	}{
		{"read", bson.A{stage("$match", bson.D{}), stage("$group", bson.D{{Key: "_id", Value: nil}})}, core.ScopeDatabaseRead},
		{"$out", bson.A{stage("$out", "c")}, core.ScopeDatabaseWrite},
		{"$merge last", bson.A{stage("$match", bson.D{}), stage("$merge", bson.D{{Key: "into", Value: "c"}})}, core.ScopeDatabaseWrite},
		{"$out in $facet", bson.A{stage("$facet", bson.D{{Key: "a", Value: bson.A{stage("$out", "c")}}})}, core.ScopeDatabaseWrite},
		{"$merge in $lookup", bson.A{stage("$lookup", bson.D{{Key: "from", Value: "x"}, {Key: "as", Value: "y"},
			{Key: "pipeline", Value: bson.A{stage("$merge", "c")}}})}, core.ScopeDatabaseWrite},
		{"$out in $unionWith in $facet", bson.A{stage("$facet", bson.D{{Key: "a", Value: bson.A{stage("$unionWith",
			bson.D{{Key: "coll", Value: "x"}, {Key: "pipeline", Value: bson.A{stage("$out", "c")}}})}}})}, core.ScopeDatabaseWrite},
		{"$lookup without writes", bson.A{stage("$lookup", bson.D{{Key: "from", Value: "x"}, {Key: "as", Value: "y"},
			{Key: "pipeline", Value: bson.A{stage("$match", bson.D{})}}})}, core.ScopeDatabaseRead},
	} {
		cmd := doc(t, bson.D{{Key: "aggregate", Value: "c"}, {Key: "pipeline", Value: tc.pipeline}})
		if c, s := Classify([]byte("aggregate"), cmd); c != ClassScoped || s != tc.want {
			t.Errorf("%s: %d %v, want %v", tc.name, c, s, tc.want)
		}
	}
}

// TestClassifyExplainAndProfile: explain needs what it explains; profile
// only reads the level.
func TestClassifyExplainAndProfile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cmd   bson.D
		class Class
		scope core.Scope
	}{
		{"explain find", bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: "c"}}}}, ClassScoped, core.ScopeDatabaseRead},
		{"explain update", bson.D{{Key: "explain", Value: bson.D{{Key: "update", Value: "c"}, {Key: "updates", Value: bson.A{}}}}}, ClassScoped, core.ScopeDatabaseWrite},
		{"explain $out", bson.D{{Key: "explain", Value: bson.D{{Key: "aggregate", Value: "c"},
			{Key: "pipeline", Value: bson.A{bson.D{{Key: "$out", Value: "x"}}}}}}}, ClassScoped, core.ScopeDatabaseWrite},
		{"explain shutdown", bson.D{{Key: "explain", Value: bson.D{{Key: "shutdown", Value: 1}}}}, ClassRefused, 0},
		{"explain hello", bson.D{{Key: "explain", Value: bson.D{{Key: "hello", Value: 1}}}}, ClassUnknown, 0},
		{"profile -1", bson.D{{Key: "profile", Value: -1}}, ClassScoped, core.ScopeMetricsRead},
		{"profile 2", bson.D{{Key: "profile", Value: 2}}, ClassRefused, 0},
	} {
		c, s := Classify([]byte(tc.cmd[0].Key), doc(t, tc.cmd))
		if c != tc.class || (c == ClassScoped && s != tc.scope) {
			t.Errorf("%s: %d %v, want %d %v", tc.name, c, s, tc.class, tc.scope)
		}
	}
}

// TestSequencesAllowed: only insert's documents, update's updates and
// delete's deletes may come as document sequences in proxy mode.
func TestSequencesAllowed(t *testing.T) {
	for _, tc := range []struct {
		cmd, id string
		want    bool
	}{
		{"insert", "documents", true}, {"update", "updates", true}, {"delete", "deletes", true},
		{"aggregate", "pipeline", false}, {"insert", "pipeline", false}, {"find", "filter", false},
	} {
		m := opMsgSeq(t, 1, bson.D{{Key: tc.cmd, Value: "c"}, {Key: "$db", Value: "main"}}, tc.id, bson.D{{Key: "a", Value: 1}})
		msg, _, err := ReadMessage(m, MaxMessageSize)
		if err != nil || msg.Sequences != 1 {
			t.Fatalf("%s: %v", tc.cmd, err)
		}
		if got := sequencesAllowed([]byte(tc.cmd), m); got != tc.want {
			t.Errorf("%s with a %s sequence: %v, want %v", tc.cmd, tc.id, got, tc.want)
		}
	}
}
