package e2e

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/heliosdb/auth/core"
)

// TestCrossDBRedis: with go-redis against the real heliosd, a test token on
// test database 3 is refused every command that names or reaches database
// 0 (registered, not a test database) — MOVE, COPY … DB, SWAPDB, MIGRATE,
// FLUSHALL, EVAL — with -NOPERM naming database 0; the same commands from a
// live token, and MOVE to test database 4 from the test token, pass the
// policy and get the "no upstream" error.
func TestCrossDBRedis(t *testing.T) {
	d := startDaemon(t)
	ctx := mongoCtx(t)
	bearer := d.NewUser(t)
	for _, name := range []string{"db3", "db4"} {
		d.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": name, "test": true}, nil)
	}
	d.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": "db0"}, nil)
	testTok, _ := d.CreateToken(t, bearer, map[string]any{"name": "ci", "type": "test"})
	liveTok, _ := d.CreateToken(t, bearer, map[string]any{"name": "app"})

	const testOnly = " (" + "Test tokens can only access test databases: Redis database 0 is the registered database \"db0\", which is not a test database)"
	refused := []struct {
		args []any
		want string
	}{
		{[]any{"MOVE", "k", "0"}, "NOPERM User default has no permissions to run the 'move' command on database 0" + testOnly},
		{[]any{"COPY", "a", "b", "DB", "0", "REPLACE"}, "NOPERM User default has no permissions to run the 'copy' command on database 0" + testOnly},
		{[]any{"SWAPDB", "3", "0"}, "NOPERM User default has no permissions to run the 'swapdb' command on database 0" + testOnly},
		{[]any{"MIGRATE", "127.0.0.1", "1", "k", "0", "1000"}, "NOPERM User default has no permissions to run the 'migrate' command to database 0 on 127.0.0.1:1 (" +
			core.ErrTestDatabaseOnly.Message + ": MIGRATE writes to another server, whose databases are not in HeliosDB's registry of test databases)"},
		{[]any{"FLUSHALL"}, "NOPERM User default has no permissions to run the 'flushall' command, which reaches every logical database (0 to 15), including database 0" + testOnly},
		{[]any{"EVAL", "redis.call('SELECT', 0) return redis.call('GET', 'k')", "0"},
			"NOPERM User default has no permissions to run the 'eval' command, which reaches every logical database (0 to 15), including database 0" + testOnly},
	}
	rt := redisFrom(d, testTok, 3, nil) // go-redis sends SELECT 3 after HELLO
	defer rt.Close()
	for _, c := range refused {
		if err := rt.Do(ctx, c.args...).Err(); err == nil || err.Error() != c.want {
			t.Errorf("test token %v:\n got  %v\n want %s", c.args, err, c.want)
		}
	}
	// The refusals leave the connection usable, on database 3.
	if err := rt.Do(ctx, "MOVE", "k", "4").Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR no upstream database is configured") {
		t.Errorf("test token MOVE k 4 (a test database): %v", err)
	}

	rl := redisFrom(d, liveTok, 3, nil)
	defer rl.Close()
	for _, c := range refused {
		if err := rl.Do(ctx, c.args...).Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR no upstream database is configured") {
			t.Errorf("live token %v: %v", c.args, err)
		}
	}
	checkAuthMetrics(t, d, "redis", []string{testTok, liveTok}, "ok", "forbidden")
}

// TestCrossDBMongo: with mongo-driver v2 against the real heliosd, a test
// token working on test database analytics_test is refused (code 13,
// naming the database) aggregations whose stages reach "prod" ($out,
// $merge, $lookup inside $facet, $unionWith with a nested $lookup), a
// mapReduce into prod, and a renameCollection into prod; a live token's
// identical commands pass the policy and get the "no upstream" error (115).
func TestCrossDBMongo(t *testing.T) {
	d := startDaemon(t)
	ctx := mongoCtx(t)
	bearer := d.NewUser(t)
	// "admin" as a test database, so that renameCollection (which runs
	// on admin) is refused for the namespaces it names, not for its $db.
	for _, name := range []string{"analytics_test", "admin"} {
		d.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": name, "test": true}, nil)
	}
	d.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": "prod"}, nil)
	testTok, _ := d.CreateToken(t, bearer, map[string]any{"name": "ci", "type": "test"})
	liveTok, _ := d.CreateToken(t, bearer, map[string]any{"name": "app"})

	prod := bson.D{{Key: "db", Value: "prod"}, {Key: "coll", Value: "orders"}}
	lookupProd := bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: prod}, {Key: "localField", Value: "a"}, {Key: "foreignField", Value: "a"}, {Key: "as", Value: "j"}}}}
	pipelines := []struct {
		name     string
		pipeline mongo.Pipeline
		stage    string
	}{
		{"$out", mongo.Pipeline{{{Key: "$out", Value: prod}}}, "$out"},
		{"$merge", mongo.Pipeline{{{Key: "$merge", Value: bson.D{{Key: "into", Value: prod}}}}}, "$merge"},
		{"$lookup in $facet", mongo.Pipeline{{{Key: "$facet", Value: bson.D{{Key: "joined", Value: bson.A{lookupProd}}}}}}, "$lookup"},
		{"$lookup in $unionWith", mongo.Pipeline{{{Key: "$unionWith", Value: bson.D{{Key: "coll", Value: "other"}, {Key: "pipeline", Value: bson.A{lookupProd}}}}}}, "$lookup"},
	}
	commands := []struct {
		name, db, field string
		cmd             bson.D
	}{
		{"mapReduce", "analytics_test", "mapReduce's out.db", bson.D{{Key: "mapReduce", Value: "events"}, {Key: "map", Value: "function() {}"},
			{Key: "reduce", Value: "function(k, v) {}"}, {Key: "out", Value: bson.D{{Key: "replace", Value: "x"}, {Key: "db", Value: "prod"}}}}},
		{"renameCollection", "admin", "renameCollection's target namespace (to)",
			bson.D{{Key: "renameCollection", Value: "analytics_test.events"}, {Key: "to", Value: "prod.events"}}},
	}
	reason := core.ErrTestDatabaseOnly.Message + " ("
	refusal := func(what string) string {
		return what + ` names database "prod", which is not registered as a test database; hdb_test_ tokens may use only databases created with "test": true)`
	}

	ct := mongoFrom(t, d, testTok, nil)
	events := ct.Database("analytics_test").Collection("events")
	var ce mongo.CommandError
	for _, p := range pipelines {
		_, err := events.Aggregate(ctx, p.pipeline)
		if !errors.As(err, &ce) || ce.Code != 13 || !strings.HasPrefix(ce.Message, "not authorized on analytics_test to execute command { aggregate: \"events\", $db: \"analytics_test\" }: ") ||
			!strings.HasSuffix(ce.Message, reason+refusal("its "+p.stage+" stage")) {
			t.Errorf("test token, %s: %v", p.name, err)
		}
	}
	for _, c := range commands {
		err := ct.Database(c.db).RunCommand(ctx, c.cmd).Err()
		if !errors.As(err, &ce) || ce.Code != 13 || !strings.HasPrefix(ce.Message, "not authorized on "+c.db) || !strings.HasSuffix(ce.Message, reason+refusal(c.field)) {
			t.Errorf("test token, %s: %v", c.name, err)
		}
	}
	// The same names of the test database itself pass the policy.
	_, err := events.Aggregate(ctx, mongo.Pipeline{{{Key: "$out", Value: bson.D{{Key: "db", Value: "analytics_test"}, {Key: "coll", Value: "x"}}}}})
	if !errors.As(err, &ce) || ce.Code != 115 {
		t.Errorf("test token, $out to analytics_test: %v", err)
	}

	cl := mongoFrom(t, d, liveTok, nil)
	for _, p := range pipelines {
		_, err := cl.Database("analytics_test").Collection("events").Aggregate(ctx, p.pipeline)
		if !errors.As(err, &ce) || ce.Code != 115 || !strings.Contains(ce.Message, "no upstream database is configured") {
			t.Errorf("live token, %s: %v", p.name, err)
		}
	}
	for _, c := range commands {
		err := cl.Database(c.db).RunCommand(ctx, c.cmd).Err()
		if !errors.As(err, &ce) || ce.Code != 115 {
			t.Errorf("live token, %s: %v", c.name, err)
		}
	}
	checkAuthMetrics(t, d, "mongodb", []string{testTok, liveTok}, "ok", "forbidden")
}
