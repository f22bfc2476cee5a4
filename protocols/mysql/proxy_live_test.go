package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testupstream"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream/upstreamtest"
)

// liveProxy is the front end in proxy mode in front of a real MariaDB, in
// this process, so that the race detector watches the session, its pump
// and the pool (e2e/proxy runs heliosd as a separate binary).
type liveProxy struct {
	*upstreamtest.Gateway
	maria *testupstream.MariaDB
	admin *sql.DB
	up    *Upstream
}

func startLiveProxy(t *testing.T) *liveProxy {
	t.Helper()
	return newLiveProxy(t, testupstream.Started(t, testupstream.StartMariaDB), 8)
}

// newLiveProxy is a front end in proxy mode in front of maria, with pools
// of pool server connections.
func newLiveProxy(t *testing.T, maria *testupstream.MariaDB, pool int) *liveProxy {
	t.Helper()
	up, err := NewUpstream(UpstreamOptions{AdminURL: maria.AdminURL, PasswordsFile: filepath.Join(t.TempDir(), "upstream-mysql.json"),
		PoolSize: pool, PoolWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	if err := up.Provision(context.Background(), []string{"main"}, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Key: key(t), Upstream: up})
	if err != nil {
		t.Fatal(err)
	}
	lp := &liveProxy{Gateway: upstreamtest.Serve(t, netio.Config{}, "mysql", p), maria: maria, up: up}
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "root", maria.Password, "tcp", maria.Addr
	lp.admin = openDB(t, cfg)
	return lp
}

// db opens a go-sql-driver pool of clients with tok.
func (lp *liveProxy) db(t *testing.T, tok string, multi bool) *sql.DB {
	t.Helper()
	cfg := lp.config(tok, "main")
	cfg.MultiStatements = multi
	return openDB(t, cfg)
}

// config is go-sql-driver's configuration for a client with tok on
// database db.
func (lp *liveProxy) config(tok, db string) *gomysql.Config {
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "default", tok, "tcp", lp.Addr, db
	cfg.Timeout, cfg.ReadTimeout = 10*time.Second, 30*time.Second
	return cfg
}

func openDB(t *testing.T, cfg *gomysql.Config) *sql.DB {
	t.Helper()
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func errNumber(err error) uint16 {
	if me, ok := err.(*gomysql.MySQLError); ok {
		return me.Number
	}
	return 0
}

// waitGone waits until the server thread id has ended.
func (lp *liveProxy) waitGone(t *testing.T, id int64, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := lp.admin.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: server thread %d is still there", what, id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProxyLive drives the proxy with go-sql-driver against MariaDB 10.11
// under the race detector: concurrent sessions mixing prepared statements,
// transactions, multi-statements, LOAD DATA LOCAL and refusals; a client
// that leaves mid-query (its statement is KILLed); a token revoked
// mid-query; pool exhaustion; a server restart under an idle session;
// anonymous users, which the server would match before 'helios_read'@'%'.
func TestProxyLive(t *testing.T) {
	lp := startLiveProxy(t)
	full, _ := lp.Mint(t, core.AllScopes)
	read, _ := lp.Mint(t, core.ScopeSet(0).With(core.ScopeDatabaseRead))
	owner := lp.db(t, full, true)
	if _, err := owner.Exec("CREATE TABLE live(id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO live VALUES (0, 'zero')"); err != nil {
		t.Fatal(err)
	}

	t.Run("concurrent", func(t *testing.T) {
		const workers, rounds = 4, 60
		upstreamtest.Concurrently(t, workers, func(w int) error {
			db := lp.db(t, full, true)
			db.SetMaxOpenConns(1)
			gomysql.RegisterReaderHandler(fmt.Sprint("live", w), func() io.Reader { return strings.NewReader(fmt.Sprintf("%d\tloaded\n", 1000+w)) })
			for i := 1; i <= rounds; i++ {
				id := w*rounds + i
				tx, err := db.Begin()
				if err == nil {
					_, err = tx.Exec("INSERT INTO live VALUES (?, ?)", id, "v")
				}
				if err == nil {
					err = tx.Commit()
				}
				var v string
				if err == nil {
					err = db.QueryRow("SELECT v FROM live WHERE id = ?", id).Scan(&v)
				}
				if err == nil {
					_, err = db.Exec(fmt.Sprintf("UPDATE live SET v = 'w' WHERE id = %d; SELECT 1", id))
				}
				if err != nil {
					return fmt.Errorf("worker %d round %d: %w", w, i, err)
				}
			}
			if _, err := db.Exec(fmt.Sprintf("LOAD DATA LOCAL INFILE 'Reader::live%d' INTO TABLE live", w)); err != nil {
				return fmt.Errorf("LOAD DATA LOCAL: %w", err)
			}
			return nil
		}, func(int) error {
			db := lp.db(t, read, false)
			db.SetMaxOpenConns(1)
			for i := 0; i < rounds; i++ {
				if _, err := db.Exec("DELETE FROM live"); errNumber(err) != erTableAccessDenied {
					return fmt.Errorf("a read token's DELETE: %v", err)
				}
				var n int
				if err := db.QueryRow("SELECT COUNT(*) FROM live WHERE id >= ?", 0).Scan(&n); err != nil || n == 0 {
					return fmt.Errorf("a read token's SELECT: %d %v", n, err)
				}
			}
			return nil
		})
		var n int
		if err := lp.admin.QueryRow("SELECT COUNT(*) FROM main.live WHERE v IN ('w', 'loaded')").Scan(&n); err != nil || n != workers*rounds+workers {
			t.Fatalf("rows on the server: %d %v", n, err)
		}
	})

	t.Run("client leaves mid-query", func(t *testing.T) {
		db := lp.db(t, full, false)
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := conn.QueryRowContext(ctx, "SELECT SLEEP(30)").Scan(new(int)); err == nil {
			t.Fatal("SLEEP(30) returned within 300ms")
		}
		conn.Close()
		lp.waitGone(t, id, "a client that left mid-query")
	})

	t.Run("revoked mid-query", func(t *testing.T) {
		tok, c := lp.Mint(t, core.AllScopes)
		conn, err := lp.db(t, tok, false).Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var id int64
		if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(300 * time.Millisecond)
			lp.Revoke(c)
		}()
		err = conn.QueryRowContext(context.Background(), "SELECT SLEEP(30)").Scan(new(int))
		if errNumber(err) != erAccessDenied || !strings.Contains(err.Error(), "session ended") {
			t.Fatalf("revoked mid-query: %v", err)
		}
		lp.waitGone(t, id, "a revoked session")
	})

	t.Run("pool exhausted", func(t *testing.T) {
		var held []*sql.Conn
		for i := 0; i < 8; i++ {
			c, err := lp.db(t, read, false).Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		err := lp.db(t, read, false).Ping()
		if errNumber(err) != erConCount {
			t.Fatalf("ninth client of a pool of 8: %v", err)
		}
		for _, c := range held {
			c.Close()
		}
	})

	t.Run("server restart", func(t *testing.T) {
		conn, err := lp.db(t, read, false).Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.PingContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := lp.maria.Restart(); err != nil {
			t.Fatal(err)
		}
		err = conn.QueryRowContext(context.Background(), "SELECT 1").Scan(new(int))
		if errNumber(err) != erServerLost {
			t.Fatalf("after the server restarted: %v", err)
		}
		var n int
		if err := lp.db(t, read, false).QueryRow("SELECT 1").Scan(&n); err != nil || n != 1 {
			t.Fatalf("a new client after the restart: %v", err)
		}
	})

	t.Run("anonymous users", func(t *testing.T) {
		// A server with anonymous users (old installs, mysql_secure_installation
		// not run) matches ''@'localhost' before 'helios_read'@'%' for a
		// client from the gateway's host: the users get those hosts too.
		for _, q := range []string{"CREATE USER ''@'localhost'", "CREATE USER ''@'127.0.0.1'"} {
			if _, err := lp.admin.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		if err := lp.up.Provision(context.Background(), []string{"other"}, func(string) bool { return false }); err != nil {
			t.Fatal(err)
		}
		cfg := gomysql.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "default", read, "tcp", lp.Addr, "other"
		var user string
		if err := openDB(t, cfg).QueryRow("SELECT CURRENT_USER()").Scan(&user); err != nil || !strings.HasPrefix(user, "helios_read@") {
			t.Fatalf("a new server connection with anonymous users on the server: %q %v", user, err)
		}
	})
}
