package e2e

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgConnectFrom connects with pgx from a chosen source address (empty: the
// default) and runs SELECT 1.
func pgConnectFrom(t *testing.T, d *daemon, tok, db, src string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, port, _ := net.SplitHostPort(d.PG)
	cfg, err := pgx.ParseConfig("postgresql://default:" + tok + "@" + host + ":" + port + "/" + db + "?sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	if src != "" {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		cfg.DialFunc = dialer.DialContext
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestPostgresPolicy: a token's IP allowlist and a test token's database
// rule hold on PostgreSQL (pgx and psql), and a PostgreSQL login shows as
// last_used in the token list.
func TestPostgresPolicy(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, withArgs("--usage-flush", "200ms"))
	live := d.NewUser(t)

	// IP allowlist: only 127.0.0.2 may use this token.
	pinned, _ := d.CreateToken(t, live, map[string]any{"name": "pinned", "scopes": []string{"database:read"}, "allowed_ips": []string{"127.0.0.2"}})
	if err := pgConnectFrom(t, d, pinned, "main", "127.0.0.2"); err != nil {
		t.Fatalf("allowed source address: %v", err)
	}
	err := pgConnectFrom(t, d, pinned, "main", "127.0.0.1")
	if pgCode(err) != "28000" || !strings.Contains(err.Error(), "not allowed from this IP address") {
		t.Fatalf("disallowed source address: %v", err)
	}

	// Test tokens reach test databases only.
	if status, body := d.Do(t, "POST", "/v1/databases", live, map[string]any{"name": "scratch", "test": true}); status != 200 && status != 201 {
		t.Fatalf("create test database: %d %s", status, body)
	}
	testTok, _ := d.CreateToken(t, live, map[string]any{"name": "tests", "type": "test", "scopes": []string{"database:read"}})
	err = pgConnectFrom(t, d, testTok, "main", "")
	if pgCode(err) != "42501" || !strings.Contains(err.Error(), "Test tokens can only access test databases") {
		t.Fatalf("test token on main: %v", err)
	}
	if err := pgConnectFrom(t, d, testTok, "scratch", ""); err != nil {
		t.Fatalf("test token on a test database: %v", err)
	}
	out, _ := exec.Command("psql", pgURL(d.PG, testTok, "require"), "-c", "SELECT 1").CombinedOutput()
	if !strings.Contains(string(out), "Test tokens can only access test databases") {
		t.Fatalf("psql with a test token on main: %s", out)
	}

	// last_used flows from a PostgreSQL login to GET /v1/auth/tokens.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if tk := issList(t, d, live)["pinned"]; tk.LastUsed != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("last_used not set after a PostgreSQL login")
		}
	}
}
