package ops

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/internal/testupstream"
)

// TestReloadPoolSize: heliosd in front of a real PostgreSQL with
// pg_pool_size = 1: a second client of the same role waits pg_pool_wait and
// gets 53300; after the file says 2 and heliosd reload, it gets in while
// the first stays connected; back to 1, both stay and a third is refused.
func TestReloadPoolSize(t *testing.T) {
	pg := testupstream.Started(t, testupstream.StartPostgres)
	dir := t.TempDir()
	conf := filepath.Join(dir, "heliosd.toml")
	write(t, conf, "pg_pool_size = 1\npg_pool_wait = \"300ms\"\n")
	d := testdaemon.Start(t, testdaemon.WithArgs("--config", conf, "--pg-upstream", pg.AdminURL))
	tok := d.Mint(t, core.Claims{Account: 1, Scopes: core.ScopeSet(0).With(core.ScopeDatabaseRead)})
	url := "postgresql://default:" + tok + "@" + d.PG + "/main?sslmode=disable&connect_timeout=10"
	ctx := context.Background()
	connect := func() (*pgx.Conn, error) {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		return pgx.Connect(cctx, url)
	}
	code := func(err error) string {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe.Code
		}
		return ""
	}
	a, err := connect()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	if _, err := connect(); code(err) != "53300" {
		t.Fatalf("second client at pg_pool_size 1: %v, want 53300", err)
	}

	write(t, conf, "pg_pool_size = 2\npg_pool_wait = \"300ms\"\n")
	if out, err := reloadCmd(t, "--data-dir", d.DataDir); err != nil || !strings.Contains(out, "pg_pool_size") {
		t.Fatalf("heliosd reload: %v\n%s", err, out)
	}
	b, err := connect()
	if err != nil {
		t.Fatalf("second client after pg_pool_size 2 was reloaded: %v", err)
	}
	defer b.Close(ctx)

	write(t, conf, "pg_pool_size = 1\npg_pool_wait = \"300ms\"\n")
	if out, err := reloadCmd(t, "--data-dir", d.DataDir); err != nil {
		t.Fatalf("heliosd reload: %v\n%s", err, out)
	}
	for _, c := range []*pgx.Conn{a, b} {
		var one int
		if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("a session open before the pool shrank: %v", err)
		}
	}
	if _, err := connect(); code(err) != "53300" {
		t.Fatalf("third client after pg_pool_size 1 was reloaded: %v, want 53300", err)
	}
}
