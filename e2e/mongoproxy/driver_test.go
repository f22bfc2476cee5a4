package mongoproxy

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/heliosdb/auth/core"
)

// serverCode returns the server error code of err (0 when it is none).
func serverCode(err error) (int32, string) {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return ce.Code, ce.Message
	}
	var we mongo.WriteException
	if errors.As(err, &we) {
		if len(we.WriteErrors) > 0 {
			return int32(we.WriteErrors[0].Code), we.WriteErrors[0].Message
		}
		if we.WriteConcernError != nil {
			return int32(we.WriteConcernError.Code), we.WriteConcernError.Message
		}
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
		return int32(bwe.WriteErrors[0].Code), bwe.WriteErrors[0].Message
	}
	return 0, ""
}

// TestDriverCRUDCursorsBulk: mongo-driver v2 through the gateway to
// FerretDB: CRUD, a cursor over 10,000 documents in batches of 500 (every
// getMore on the server connection that opened the cursor), bulk writes
// ordered and unordered; hello after authentication says the server's
// wire versions.
func TestDriverCRUDCursorsBulk(t *testing.T) {
	d := daemonWith(t)
	ctx := ctxT(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
	c := connect(t, d, tok, "main")
	coll := c.Database("main").Collection("drv_items")
	_ = coll.Drop(ctx)

	// CRUD.
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if r, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 41}}}}); err != nil || r.ModifiedCount != 1 {
		t.Fatalf("update: %+v %v", r, err)
	}
	var got struct{ N int }
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&got); err != nil || got.N != 42 {
		t.Fatalf("find after update: %+v %v", got, err)
	}
	if r, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: "a"}}); err != nil || r.DeletedCount != 1 {
		t.Fatalf("delete: %+v %v", r, err)
	}
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "dup"}})
	if err == nil {
		_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "dup"}})
	}
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("the server's duplicate key error does not come through: %v", err)
	}

	// 10,000 documents in one InsertMany (the driver splits by
	// maxWriteBatchSize and message size), then a cursor over them.
	docs := make([]any, 10000)
	for i := range docs {
		docs[i] = bson.D{{Key: "i", Value: i}, {Key: "pad", Value: strings.Repeat("x", 100)}}
	}
	if r, err := coll.InsertMany(ctx, docs); err != nil || len(r.InsertedIDs) != 10000 {
		t.Fatalf("insert 10k: %v", err)
	}
	cur, err := coll.Find(ctx, bson.D{{Key: "i", Value: bson.D{{Key: "$gte", Value: 0}}}}, options.Find().SetBatchSize(500).SetSort(bson.D{{Key: "i", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	n, sum := 0, 0
	for cur.Next(ctx) {
		var doc struct{ I int }
		if err := cur.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if doc.I != n {
			t.Fatalf("document %d has i=%d", n, doc.I)
		}
		n++
		sum += doc.I
	}
	if err := cur.Err(); err != nil || n != 10000 || sum != 9999*10000/2 {
		t.Fatalf("cursor read %d documents (sum %d): %v", n, sum, err)
	}
	cur.Close(ctx)
	// A cursor closed early: killCursors goes to the same connection.
	cur, err = coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(10))
	if err != nil || !cur.Next(ctx) {
		t.Fatalf("find: %v", err)
	}
	if err := cur.Close(ctx); err != nil {
		t.Fatalf("killCursors: %v", err)
	}

	// Bulk writes, ordered and unordered.
	models := []mongo.WriteModel{
		mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: "b1"}, {Key: "v", Value: 1}}),
		mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: "b2"}, {Key: "v", Value: 2}}),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: "b1"}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 10}}}}),
		mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: "b2"}}).SetReplacement(bson.D{{Key: "v", Value: 20}}),
		mongo.NewDeleteManyModel().SetFilter(bson.D{{Key: "i", Value: bson.D{{Key: "$gte", Value: 5000}}}}),
	}
	br, err := coll.BulkWrite(ctx, models)
	if err != nil || br.InsertedCount != 2 || br.ModifiedCount != 2 || br.DeletedCount != 5000 {
		t.Fatalf("ordered bulk write: %+v %v", br, err)
	}
	br, err = coll.BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: "b1"}}), // duplicate
		mongo.NewInsertOneModel().SetDocument(bson.D{{Key: "_id", Value: "b3"}}),
	}, options.BulkWrite().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 1 || br.InsertedCount != 1 {
		t.Fatalf("unordered bulk write with a duplicate: %+v %v", br, err)
	}

	// On the server itself.
	dc := direct(t).Database("main").Collection("drv_items")
	if n, err := dc.CountDocuments(ctx, bson.D{}); err != nil || n != 5000+1+3 {
		t.Fatalf("the server holds %d documents: %v", n, err)
	}
	var b1 struct{ V int }
	if err := dc.FindOne(ctx, bson.D{{Key: "_id", Value: "b1"}}).Decode(&b1); err != nil || b1.V != 10 {
		t.Fatalf("b1 on the server: %+v %v", b1, err)
	}

	// hello after authentication: the server's wire versions; buildInfo:
	// the server's.
	var hello, direct struct {
		MaxWireVersion int32 `bson:"maxWireVersion"`
		MinWireVersion int32 `bson:"minWireVersion"`
	}
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		t.Fatal(err)
	}
	if err := directDB(t, "admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&direct); err != nil {
		t.Fatal(err)
	}
	if hello != direct || hello.MaxWireVersion == 0 {
		t.Fatalf("hello through the gateway %+v, from the server %+v", hello, direct)
	}
	var bi struct {
		FerretDBVersion string `bson:"ferretdbVersion"`
	}
	if err := c.Database("main").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err != nil || bi.FerretDBVersion != "v1.24.2" {
		t.Fatalf("buildInfo after authentication is not the server's: %+v %v", bi, err)
	}
}

// directDB is a database of the server itself.
func directDB(t *testing.T, name string) *mongo.Database { return direct(t).Database(name) }

// TestDriverOverTLS: a client over TLS (as from another host) is proxied
// the same way: the session runs on its TLS goroutine, the pump writes into
// the TLS stream.
func TestDriverOverTLS(t *testing.T) {
	d := daemonWith(t)
	ctx := ctxT(t)
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: readWrite})
	o := options.Client().ApplyURI("mongodb://default:" + url.QueryEscape(tok) + "@" + d.Mongo +
		"/main?authMechanism=PLAIN&tls=true&tlsCAFile=" + url.QueryEscape(d.CACert)).SetServerSelectionTimeout(10 * time.Second)
	c, err := mongo.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	coll := c.Database("main").Collection("tls_items")
	docs := make([]any, 3000)
	for i := range docs {
		docs[i] = bson.D{{Key: "i", Value: i}, {Key: "pad", Value: strings.Repeat("t", 200)}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatalf("insert over TLS: %v", err)
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(100))
	if err != nil {
		t.Fatal(err)
	}
	var all []bson.Raw
	if err := cur.All(ctx, &all); err != nil || len(all) < 3000 {
		t.Fatalf("cursor over TLS: %d %v", len(all), err)
	}
}
