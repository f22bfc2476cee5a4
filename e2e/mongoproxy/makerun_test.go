package mongoproxy

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

// TestMakeRunStartsFerretDB runs scripts/run.sh (make run's recipe) twice
// on the same data directory, as a newcomer would: it starts FerretDB
// under data/upstreams/ferretdb on a private port, with a login only
// heliosd is given, points heliosd at it, and mongosh with a token writes
// a document through the gateway that is still there the second time;
// Ctrl-C stops everything it started.
func TestMakeRunStartsFerretDB(t *testing.T) {
	mr := testdaemon.NewMakeRun(t)
	mongoPort := testdaemon.FreePort(t)
	mr.Env = append(mr.Env, "MONGO_UPSTREAM_PORT="+mongoPort,
		"PG_UPSTREAM_PORT="+testdaemon.FreePort(t), "MYSQL_UPSTREAM_PORT="+testdaemon.FreePort(t))
	for run := 1; run <= 2; run++ {
		// The first run may build FerretDB.
		logs := mr.Run(t, 5*time.Minute, func(logs func() string) {
			if !strings.Contains(logs(), "FerretDB v1.24.2 on 127.0.0.1:"+mongoPort) {
				t.Fatalf("make run did not start FerretDB:\n%s", logs())
			}
			tok := mr.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
			out, err := runMongosh(t, "", "mongodb://default:"+url.QueryEscape(tok)+"@"+mr.Listen["mongo-listen"]+"/main?authMechanism=PLAIN",
				"--quiet", "--eval", "db.newcomer.insertOne({run: "+string(rune('0'+run))+"}); db.newcomer.countDocuments()")
			if err != nil || !strings.HasSuffix(strings.TrimSpace(out), string(rune('0'+run))) {
				t.Fatalf("mongosh through make run's gateway (run %d): %v\n%s\n%s", run, err, out, logs())
			}
			// The server itself wants a login: no going around the gateway.
			c, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:" + mongoPort + "/").SetDirect(true))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Disconnect(context.Background())
			if err := c.Database("main").Collection("newcomer").FindOne(context.Background(), bson.D{}).Err(); err == nil {
				t.Fatal("make run's FerretDB answers without a login")
			}
		})
		if strings.Contains(logs, "setup-password") {
			t.Fatal("the FerretDB password was on a command line shown in the logs")
		}
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+mongoPort, time.Second); err == nil {
		c.Close()
		t.Fatal("FerretDB still accepts after make run stopped")
	}
}
