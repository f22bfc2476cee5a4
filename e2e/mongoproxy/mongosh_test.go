package mongoproxy

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/heliosdb/auth/core"
)

// TestMongoshThroughProxy: mongosh, as a person uses it, through the
// gateway to FerretDB: CRUD, an aggregation, show dbs (only the registered
// databases, not the server's others), and the server's own buildInfo.
func TestMongoshThroughProxy(t *testing.T) {
	d := daemonWith(t)
	ctx := ctxT(t)
	// A database on the server that is not registered with HeliosDB.
	if _, err := direct(t).Database("unregistered_elsewhere").Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	script := `db.sh_people.insertMany([{name: "ada", age: 36}, {name: "alan", age: 41}, {name: "grace", age: 85}])
db.sh_people.updateOne({name: "alan"}, {$set: {age: 42}})
db.sh_people.deleteOne({name: "grace"})
db.sh_people.find({}, {_id: 0}).sort({name: 1}).toArray()
db.sh_people.aggregate([{$group: {_id: null, total: {$sum: "$age"}}}]).toArray()
show dbs
db.runCommand({buildInfo: 1}).ferretdbVersion
exit
`
	out, err := runMongosh(t, script, uri(d, tok, "main"))
	if err != nil {
		t.Fatalf("mongosh: %v\n%s", err, out)
	}
	for _, want := range []string{"insertedIds", "modifiedCount: 1", "deletedCount: 1",
		"{ name: 'ada', age: 36 }", "{ name: 'alan', age: 42 }", "total: 78", "main ", "v1.24.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("mongosh output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "unregistered_elsewhere") {
		t.Errorf("show dbs lists a database that is not registered:\n%s", out)
	}
	// On the server itself.
	n, err := direct(t).Database("main").Collection("sh_people").CountDocuments(ctx, bson.D{})
	if err != nil || n != 2 {
		t.Fatalf("the server holds %d documents: %v", n, err)
	}
}
