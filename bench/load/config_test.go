package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestParseTarget(t *testing.T) {
	tg, err := ParseTarget("10.1.2.3")
	if err != nil || tg[PG] != "10.1.2.3:5432" || tg[Redis] != "10.1.2.3:6379" || tg[REST] != "http://10.1.2.3:8080" || tg[Mongo] != "10.1.2.3:27017" {
		t.Fatalf("%v %v", tg, err)
	}
	tg, err = ParseTarget("pg=127.0.0.2:6000,rest=https://h:9/")
	if err != nil || tg[PG] != "127.0.0.2:6000" || tg[REST] != "https://h:9" || tg[MySQL] != "127.0.0.2:3306" {
		t.Fatalf("%v %v", tg, err)
	}
	for _, bad := range []string{"pg=nohostport", "smtp=1.2.3.4:25", "a,b", "rest=ftp://x"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseCompare(t *testing.T) {
	eps, err := ParseCompare("direct=postgres://u:secret@127.0.0.1:5432/main?sslmode=disable&options=a,b,pgbouncer=postgres://u:pw@127.0.0.1:6432/main,r=redis://:pw@127.0.0.1:6380/0,gw2=http://127.0.0.1:8081")
	if err != nil || len(eps) != 4 {
		t.Fatalf("%+v %v", eps, err)
	}
	if eps[0].Protocol != PG || !strings.HasSuffix(eps[0].URL, "options=a,b") || eps[0].Addr != "127.0.0.1:5432" {
		t.Errorf("%+v", eps[0])
	}
	if eps[2].Protocol != Redis || eps[3].Protocol != REST || !eps[3].Gateway {
		t.Errorf("%+v", eps)
	}
	if js, _ := json.Marshal(describe(&Config{Compare: eps})); strings.Contains(string(js), "secret") {
		t.Error("the setup shows a password")
	}
	for _, bad := range []string{"direct", "x=ftp://h/", "gateway=postgres://h/"} {
		if _, err := ParseCompare(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseProtocolsWorkload(t *testing.T) {
	if ps, err := ParseProtocols("all"); err != nil || len(ps) != 5 {
		t.Fatal(ps, err)
	}
	if ps, err := ParseProtocols("redis,pg,redis"); err != nil || len(ps) != 2 || ps[0] != Redis {
		t.Fatal(ps, err)
	}
	if _, err := ParseProtocols("pg,oracle"); err == nil {
		t.Error("oracle accepted")
	}
	if _, err := ParseWorkloads("point,soak"); err == nil {
		t.Error("soak accepted")
	}
	if ws, err := ParseWorkloads("connect,point,connect,revoke-storm"); err != nil || len(ws) != 3 || ws[2] != RevokeStorm {
		t.Error(ws, err)
	}
}

// TestErrorKindHidesTokens: a token in an error message never reaches a
// figure; the server's code and message do.
func TestErrorKindHidesTokens(t *testing.T) {
	tok := "hdb_live_" + strings.Repeat("x", 30)
	k := errorKind(fmt.Errorf("connect: %w", &pgconn.PgError{Code: "28P01", Message: "bad token " + tok}))
	if k != "postgres 28P01: bad token hdb_…" {
		t.Errorf("%q", k)
	}
	if k := errorKind(errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")); strings.Contains(k, "5432") {
		t.Errorf("%q", k)
	}
}
