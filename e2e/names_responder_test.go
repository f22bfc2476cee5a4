package e2e

import (
	"net"
	"strings"
	"testing"
)

// TestNamesPostgres: through the real heliosd, psql to a database that is
// not registered gets FATAL 3D000, psql as a user other than default gets
// 28P01 telling it to connect as default with the token as the password,
// and the registered "main" and the implied name (none given: psql uses
// the user name, default) still answer SELECT 1.
func TestNamesPostgres(t *testing.T) {
	requirePsql(t)
	d := startDaemon(t)
	tok := pgToken(t, d)
	host, port, _ := net.SplitHostPort(d.PG)
	base := "postgresql://default:" + tok + "@" + host + ":" + port
	for _, url := range []string{base + "/main?sslmode=require", base + "?sslmode=require"} {
		if out, err := psql(t, url, "SELECT 1"); err != nil || strings.TrimSpace(out) != "1" {
			t.Fatalf("%s: %v\n%s", strings.Replace(url, tok, "TOKEN", 1), err, out)
		}
	}
	out, err := psql(t, base+"/nope?sslmode=require", "SELECT 1")
	if err == nil || !strings.Contains(out, `database "nope" does not exist`) {
		t.Fatalf("database nope: %v\n%s", err, out)
	}
	out, err = psql(t, "postgresql://alice:"+tok+"@"+host+":"+port+"/main?sslmode=require", "SELECT 1")
	if err == nil || !strings.Contains(out, `password authentication failed for user "alice"`) ||
		!strings.Contains(out, "connect as user default with the token as the password") {
		t.Fatalf("user alice: %v\n%s", err, out)
	}
}
