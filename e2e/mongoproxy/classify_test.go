package mongoproxy

import (
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/heliosdb/auth/core"
)

// TestReadTokenRefusedWrites: a read token reads through the gateway, and
// every kind of write is refused by the classifier (FerretDB enforces no
// roles: nothing else would stop it) — insert, update, delete, bulk
// writes, and an aggregation that writes with $out or $merge inside a
// $facet or a $lookup's pipeline — with mongod's words and the scope; the
// server holds nothing of them. A write token's $merge is forwarded (and
// answered by the server).
func TestReadTokenRefusedWrites(t *testing.T) {
	d := daemonWith(t)
	ctx := ctxT(t)
	seed := direct(t).Database("main").Collection("ro_items")
	_ = seed.Drop(ctx)
	if _, err := seed.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "seed"}}); err != nil {
		t.Fatal(err)
	}
	ro := connect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: scopes(core.ScopeDatabaseRead)}), "main")
	coll := ro.Database("main").Collection("ro_items")
	var got struct{ V string }
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got); err != nil || got.V != "seed" {
		t.Fatalf("read with a read token: %+v %v", got, err)
	}
	wantScope := func(what string, err error) {
		t.Helper()
		code, msg := serverCode(err)
		if code != 13 || !strings.Contains(msg, "not authorized on main to execute command") ||
			!strings.Contains(msg, "Token does not have required scope: database:write") {
			t.Errorf("%s with a read token: %v", what, err)
		}
	}
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
	wantScope("insert", err)
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "changed"}}}})
	wantScope("update", err)
	_, err = coll.DeleteMany(ctx, bson.D{})
	wantScope("delete", err)
	_, err = coll.BulkWrite(ctx, []mongo.WriteModel{mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: 3}})})
	wantScope("bulk write", err)
	err = coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "x"}}}}).Err()
	wantScope("findAndModify", err)
	for name, pipeline := range map[string]bson.A{
		"$out":                        {bson.D{{Key: "$out", Value: "ro_copy"}}},
		"$merge":                      {bson.D{{Key: "$match", Value: bson.D{}}}, bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: "ro_copy"}}}}},
		"$out inside $facet":          {bson.D{{Key: "$facet", Value: bson.D{{Key: "a", Value: bson.A{bson.D{{Key: "$out", Value: "ro_copy"}}}}}}}},
		"$merge in $lookup pipeline":  {bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "ro_items"}, {Key: "as", Value: "j"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$merge", Value: "ro_copy"}}}}}}}},
		"$out in $unionWith pipeline": {bson.D{{Key: "$unionWith", Value: bson.D{{Key: "coll", Value: "ro_items"}, {Key: "pipeline", Value: bson.A{bson.D{{Key: "$facet", Value: bson.D{{Key: "b", Value: bson.A{bson.D{{Key: "$out", Value: "ro_copy"}}}}}}}}}}}}},
	} {
		_, err := coll.Aggregate(ctx, pipeline)
		wantScope("aggregate with "+name, err)
	}
	// A plain aggregation reads.
	cur, err := coll.Aggregate(ctx, bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "_id", Value: 1}}}}})
	if err != nil {
		t.Fatalf("read aggregation: %v", err)
	}
	var rows []bson.M
	if err := cur.All(ctx, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("read aggregation: %v %v", rows, err)
	}
	// Nothing reached the server.
	dc := direct(t).Database("main")
	if n, _ := dc.Collection("ro_items").CountDocuments(ctx, bson.D{}); n != 1 {
		t.Fatalf("the server holds %d documents after refused writes", n)
	}
	if err := dc.Collection("ro_items").FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got); err != nil || got.V != "seed" {
		t.Fatalf("the seed document changed: %+v %v", got, err)
	}
	names, _ := dc.ListCollectionNames(ctx, bson.D{{Key: "name", Value: "ro_copy"}})
	if len(names) != 0 {
		t.Fatal("an aggregation's $out reached the server")
	}
	// A write token's $merge is the server's to answer (FerretDB 1.24 has
	// no $merge stage): it was forwarded, not refused.
	rw := connect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: readWrite}), "main")
	_, err = rw.Database("main").Collection("ro_items").Aggregate(ctx, bson.A{bson.D{{Key: "$merge", Value: "ro_copy"}}})
	if code, msg := serverCode(err); code == 13 || code == 0 || strings.Contains(msg, "Token") {
		t.Fatalf("a write token's $merge was not forwarded: %v", err)
	}
}

// TestAdministrationRefused: commands that administer the server are
// refused by name for every token, even a full-access one; data commands
// on the server's own databases (admin, local, config) are refused in
// proxy mode, while the server-wide ones still run there.
func TestAdministrationRefused(t *testing.T) {
	d := daemonWith(t)
	ctx := ctxT(t)
	c := connect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main")
	admin := c.Database("admin")
	for _, cmd := range []bson.D{
		{{Key: "shutdown", Value: 1}},
		{{Key: "createUser", Value: "intruder"}, {Key: "pwd", Value: "x"}, {Key: "roles", Value: bson.A{}}},
		{{Key: "setParameter", Value: 1}, {Key: "logLevel", Value: 5}},
		{{Key: "compact", Value: "ro_items"}},
		{{Key: "killOp", Value: 1}, {Key: "op", Value: 1}},
		{{Key: "replSetGetStatus", Value: 1}},
		{{Key: "profile", Value: 2}},
	} {
		err := admin.RunCommand(ctx, cmd).Err()
		if code, msg := serverCode(err); code != 13 || !strings.Contains(msg, "administers the database server") {
			t.Errorf("%s: %v", cmd[0].Key, err)
		}
	}
	if err := c.Database("main").RunCommand(ctx, bson.D{{Key: "compact", Value: "x"}}).Err(); err == nil {
		t.Error("compact on main ran")
	}
	// The server's own databases hold no data a token may touch.
	err := admin.Collection("system.users").FindOne(ctx, bson.D{}).Err()
	if code, msg := serverCode(err); code != 13 || !strings.Contains(msg, "belongs to the upstream server") {
		t.Errorf("find on admin.system.users: %v", err)
	}
	_, err = c.Database("local").Collection("x").InsertOne(ctx, bson.D{{Key: "a", Value: 1}})
	if code, _ := serverCode(err); code != 13 {
		t.Errorf("insert into local: %v", err)
	}
	// Server-wide commands still run on admin.
	var st struct{ Ok float64 }
	if err := admin.RunCommand(ctx, bson.D{{Key: "serverStatus", Value: 1}}).Decode(&st); err != nil || st.Ok != 1 {
		t.Errorf("serverStatus: %v", err)
	}
	// A name the classifier does not know is never forwarded.
	err = admin.RunCommand(ctx, bson.D{{Key: "frobnicate", Value: 1}}).Err()
	if code, msg := serverCode(err); code != 59 || !strings.Contains(msg, "no such command") {
		t.Errorf("unknown command: %v", err)
	}
}

// TestDatabaseRules: $db is checked against the registry and the
// test-database rule before anything is forwarded; a test token sees and
// reaches only test databases (show dbs included); a command naming
// another database ($lookup from {db, coll}, renameCollection) is checked
// as $db is; DELETE /v1/databases drops the database on the server.
func TestDatabaseRules(t *testing.T) {
	d := daemonWith(t)
	ctx := ctxT(t)
	owner := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	name := "mp_scratch_test_" + time.Now().Format("150405")
	d.MustJSON(t, 201, "POST", "/v1/databases", owner, map[string]any{"name": name, "test": true}, nil)

	live := connect(t, d, owner, "main")
	if _, err := live.Database("main").Collection("rules").InsertOne(ctx, bson.D{{Key: "a", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	_, err := live.Database("nowhere_registered").Collection("c").InsertOne(ctx, bson.D{{Key: "a", Value: 1}})
	if code, msg := serverCode(err); code != 13 || !strings.Contains(msg, `database "nowhere_registered" does not exist`) {
		t.Fatalf("insert into an unregistered database: %v", err)
	}
	if names, _ := direct(t).ListDatabaseNames(ctx, bson.D{{Key: "name", Value: "nowhere_registered"}}); len(names) != 0 {
		t.Fatal("the unregistered database was created on the server")
	}
	// A live token may not name an unregistered database in a stage either.
	_, err = live.Database("main").Collection("rules").Aggregate(ctx, bson.A{bson.D{{Key: "$lookup", Value: bson.D{
		{Key: "from", Value: bson.D{{Key: "db", Value: "admin"}, {Key: "coll", Value: "system.users"}}}, {Key: "as", Value: "u"},
		{Key: "localField", Value: "a"}, {Key: "foreignField", Value: "a"}}}}})
	if code, msg := serverCode(err); code != 13 || !strings.Contains(msg, "not a registered HeliosDB database") {
		t.Fatalf("$lookup from admin.system.users: %v", err)
	}
	err = live.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "main.rules"}, {Key: "to", Value: "admin.stolen"}}).Err()
	if code, _ := serverCode(err); code != 13 {
		t.Fatalf("renameCollection into admin: %v", err)
	}

	testTok := d.Mint(t, core.Claims{Account: 1, Type: core.TypeTest, Flags: core.FlagTestOnly, Scopes: core.AllScopes})
	tc := connect(t, d, testTok, name)
	if _, err := tc.Database(name).Collection("t").InsertOne(ctx, bson.D{{Key: "a", Value: 1}}); err != nil {
		t.Fatalf("a test token on its test database: %v", err)
	}
	err = tc.Database("main").Collection("rules").FindOne(ctx, bson.D{}).Err()
	if code, msg := serverCode(err); code != 13 || !strings.Contains(msg, "Test tokens can only access test databases") {
		t.Fatalf("a test token on main: %v", err)
	}
	_, err = tc.Database(name).Collection("t").Aggregate(ctx, bson.A{bson.D{{Key: "$lookup", Value: bson.D{
		{Key: "from", Value: bson.D{{Key: "db", Value: "main"}, {Key: "coll", Value: "rules"}}}, {Key: "as", Value: "x"},
		{Key: "localField", Value: "a"}, {Key: "foreignField", Value: "a"}}}}})
	if code, msg := serverCode(err); code != 13 || !strings.Contains(msg, `names database "main"`) {
		t.Fatalf("a test token's $lookup into main: %v", err)
	}
	names, err := tc.ListDatabaseNames(ctx, bson.D{})
	if err != nil || len(names) != 1 || names[0] != name {
		t.Fatalf("listDatabases with a test token: %v %v", names, err)
	}
	names, err = live.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$regex", Value: "^mp_scratch"}}}})
	if err != nil || len(names) != 1 || names[0] != name {
		t.Fatalf("listDatabases with the client's own filter: %v %v", names, err)
	}

	// DELETE /v1/databases drops it on the server.
	tc.Disconnect(ctx)
	d.MustJSON(t, 200, "DELETE", "/v1/databases/"+name, owner, nil, nil)
	if names, _ := direct(t).ListDatabaseNames(ctx, bson.D{{Key: "name", Value: name}}); len(names) != 0 {
		t.Fatalf("DELETE /v1/databases left %s on the server", name)
	}
}

// TestSCRAMUpstream: an upstream that authenticates (FerretDB with SCRAM
// users): heliosd logs in with the URL's credentials, clients use their
// tokens, and a token still cannot create users on it.
func TestSCRAMUpstream(t *testing.T) {
	auth, err := startAuthFerret(t)
	if err != nil {
		t.Fatal(err)
	}
	d := daemonWith(t, testdaemonArgs("--mongo-upstream", auth.URL)...)
	ctx := ctxT(t)
	c := connect(t, d, d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes}), "main")
	if _, err := c.Database("main").Collection("scram").InsertOne(ctx, bson.D{{Key: "a", Value: 1}}); err != nil {
		t.Fatalf("insert through a SCRAM upstream: %v\n%s", err, d.Logs())
	}
	// The server does require a login.
	anon, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + auth.Addr + "/").SetDirect(true))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Disconnect(ctx)
	if err := anon.Database("main").Collection("scram").FindOne(ctx, bson.D{}).Err(); err == nil {
		t.Fatal("the upstream answers without a login: this test proves nothing")
	}
	err = c.Database("admin").RunCommand(ctx, bson.D{{Key: "createUser", Value: "intruder"}, {Key: "pwd", Value: "pw"}, {Key: "roles", Value: bson.A{}}}).Err()
	if code, _ := serverCode(err); code != 13 {
		t.Fatalf("createUser through the gateway: %v", err)
	}
	admin, err := mongo.Connect(options.Client().ApplyURI(auth.URL).SetDirect(true))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Disconnect(ctx)
	var users struct{ Users []bson.M }
	if err := admin.Database("admin").RunCommand(ctx, bson.D{{Key: "usersInfo", Value: "intruder"}}).Decode(&users); err != nil || len(users.Users) != 0 {
		t.Fatalf("usersInfo intruder on the server: %v %v", users, err)
	}
	if strings.Contains(d.Logs(), auth.Password) {
		t.Fatal("heliosd logged the upstream's password")
	}
}
