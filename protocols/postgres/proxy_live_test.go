package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testupstream"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// liveProxy is the front end in proxy mode in front of a real PostgreSQL,
// in this process, so that the race detector watches the sessions, their
// server connections on the event loops, the parking and the pool
// (e2e/proxy runs heliosd as a separate binary).
type liveProxy struct {
	addr string
	gw   *netio.Gateway
	ring *core.Keyring
	revs *core.MemoryRevocations
	pg   *testupstream.Postgres
	up   *Upstream
}

// startLiveProxy serves the front end in front of pg with a pool of
// poolSize per role and database; proxies of one test share passwords (the
// roles' passwords on the server are the file's).
func startLiveProxy(t *testing.T, pg *testupstream.Postgres, passwords string, poolSize int) *liveProxy {
	t.Helper()
	up, err := NewUpstream(UpstreamOptions{AdminURL: pg.AdminURL, PasswordsFile: passwords,
		PoolSize: poolSize, PoolWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	if err := up.Provision(context.Background(), []string{"main"}, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	lp := &liveProxy{ring: core.GenerateKeyring(time.Now().Add(-time.Hour)), revs: core.NewMemoryRevocations(), pg: pg, up: up}
	cfg := netio.Config{Keyring: lp.ring, Revocations: lp.revs, Loops: 2, Logger: slog.New(slog.DiscardHandler)}
	lp.gw, err = netio.Serve(cfg, []netio.Listener{{Addr: "127.0.0.1:0", Protocol: New(Options{Upstream: up, Policy: livePolicy{}})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lp.gw.Stop(context.Background()) })
	lp.addr = lp.gw.Addr("postgres").String()
	return lp
}

// livePolicy registers the database main (no allowlists, no test
// databases).
type livePolicy struct{}

func (livePolicy) AllowedFrom(core.TokenID, netip.Addr) bool { return true }
func (livePolicy) IsTestDatabase([]byte) bool                { return false }
func (livePolicy) IsDatabase(db []byte) bool                 { return string(db) == "main" }

// mint returns a token with scopes and its claims.
func (lp *liveProxy) mint(t *testing.T, scopes core.ScopeSet) (string, core.Claims) {
	t.Helper()
	now := time.Now()
	c := core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 7, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), Scopes: scopes}
	tok, _, err := core.NewMinter(lp.ring).Mint(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok), c
}

// connect opens a pgx connection through the gateway.
func (lp *liveProxy) connect(t *testing.T, tok string) *pgx.Conn {
	t.Helper()
	c, err := lp.tryConnect(tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (lp *liveProxy) tryConnect(tok string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return pgx.Connect(ctx, "postgres://default:"+tok+"@"+lp.addr+"/main?sslmode=disable")
}

// admin connects to the server's database main directly, as its
// superuser.
func (lp *liveProxy) admin(t *testing.T) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(lp.pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = "main"
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// code is a server error's SQLSTATE ("" for any other error).
func code(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestProxyLive drives the proxy on its event loops against a real
// PostgreSQL 15 under the race detector: server connections parked on the
// loops and reused, concurrent sessions of several tokens, refusals in
// their place in a pipeline, COPY both ways, LISTEN/NOTIFY, a slow reader
// of a large result, cancel, revocation mid-query, a client leaving
// mid-query, pool exhaustion with idle connections parked on the other
// loop, and a server restart.
func TestProxyLive(t *testing.T) {
	pg, err := testupstream.StartPostgres()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	passwords := filepath.Join(t.TempDir(), "upstream-postgres.json")
	lp := startLiveProxy(t, pg, passwords, 8)
	full, _ := lp.mint(t, core.AllScopes)
	read, _ := lp.mint(t, scopeSet(core.ScopeDatabaseRead))
	ctx := context.Background()
	admin := lp.admin(t)
	if _, err := lp.connect(t, full).Exec(ctx, "CREATE TABLE live(id int PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}

	t.Run("parked on the loop", func(t *testing.T) {
		key := parkKey{lp.up, upstreamKey(t, scopeSet(core.ScopeDatabaseRead))}
		before := netio.Parked(key)
		c, err := lp.tryConnect(read)
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
		waitUntil(t, "the server connection was not parked on its loop", func() bool { return netio.Parked(key) == before+1 })
		// Its next client on that loop gets it back, reset.
		for i := 0; i < 10; i++ {
			c, err := lp.tryConnect(read)
			if err != nil {
				t.Fatal(err)
			}
			var again int
			var app string
			if err := c.QueryRow(ctx, "SELECT pg_backend_pid(), current_setting('application_name')").Scan(&again, &app); err != nil {
				t.Fatal(err)
			}
			c.Close(ctx)
			if again == pid {
				return
			}
		}
		t.Fatal("no client got the parked server connection back")
	})

	t.Run("pipelined behind the password", func(t *testing.T) {
		// A client that sends its first query with its password, before
		// AuthenticationOk: answered once the server side is ready, with
		// startup parameters to set (a round trip on the loop) or without.
		for _, params := range [][]string{{"application_name", "piped"}, nil} {
			c, err := net.Dial("tcp", lp.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			in := startup(append([]string{"user", "default", "database", "main"}, params...)...)
			in = append(in, frontend('p', cstr(read))...)
			in = append(in, frontend('Q', cstr("SELECT 'piped-'||current_setting('application_name')"))...)
			c.Write(in)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var got []byte
			buf := make([]byte, 4096)
			want := "piped-" + strings.Join(params[min(1, len(params)):], "")
			for !bytes.Contains(got, []byte(want)) || !bytes.HasSuffix(got, []byte{'Z', 0, 0, 0, 5, 'I'}) {
				n, err := c.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					t.Fatalf("params %v: %v after %q", params, err, got)
				}
			}
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		const workers, rounds = 4, 30
		errs := make(chan error, 2*workers)
		for w := 0; w < workers; w++ {
			go func() {
				errs <- func() error {
					c, err := lp.tryConnect(full)
					if err != nil {
						return err
					}
					defer c.Close(ctx)
					for i := 0; i < rounds; i++ {
						id := w*1000 + i
						tx, err := c.Begin(ctx)
						if err != nil {
							return err
						}
						if _, err := tx.Exec(ctx, "INSERT INTO live VALUES ($1, $2)", id, "v"); err != nil {
							return err
						}
						if err := tx.Commit(ctx); err != nil {
							return err
						}
						var v string
						if err := c.QueryRow(ctx, "SELECT v FROM live WHERE id = $1", id).Scan(&v); err != nil || v != "v" {
							return fmt.Errorf("read back %d: %q %v", id, v, err)
						}
					}
					return nil
				}()
			}()
			go func() {
				errs <- func() error {
					c, err := lp.tryConnect(read)
					if err != nil {
						return err
					}
					defer c.Close(ctx)
					for i := 0; i < rounds; i++ {
						if _, err := c.Exec(ctx, "DELETE FROM live"); code(err) != "42501" {
							return fmt.Errorf("a read token's DELETE: %v", err)
						}
						var n int
						if err := c.QueryRow(ctx, "SELECT count(*) FROM live WHERE id >= $1", 0).Scan(&n); err != nil {
							return err
						}
					}
					return nil
				}()
			}()
		}
		for i := 0; i < 2*workers; i++ {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM live").Scan(&n); err != nil || n != workers*rounds {
			t.Fatalf("rows on the server: %d %v", n, err)
		}
	})

	t.Run("refusal in a pipeline", func(t *testing.T) {
		c := lp.connect(t, read)
		p := c.PgConn().StartPipeline(ctx)
		p.SendQueryParams("SELECT pg_sleep(0.3)::text || 'slept'", nil, nil, nil, nil)
		p.SendPipelineSync()
		p.SendQueryParams("INSERT INTO live VALUES (-1, 'no')", nil, nil, nil, nil)
		p.SendPipelineSync()
		p.SendQueryParams("SELECT 'after'", nil, nil, nil, nil)
		p.SendPipelineSync()
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for len(got) < 6 {
			res, err := p.GetResults()
			switch r := res.(type) {
			case *pgconn.ResultReader:
				rr := r.Read()
				if rr.Err != nil {
					got = append(got, "error "+code(rr.Err))
				} else {
					got = append(got, string(rr.Rows[0][0]))
				}
			case *pgconn.PipelineSync:
				got = append(got, "sync")
			default:
				if err != nil {
					got = append(got, "error "+code(err))
					continue
				}
				t.Fatalf("result %T %v", res, err)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		want := "slept sync error 42501 sync after sync"
		if g := strings.Join(got, " "); g != want {
			t.Fatalf("pipeline results %q, want %q", g, want)
		}
		var one int
		if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("after the pipeline: %v", err)
		}
	})

	t.Run("copy and notify", func(t *testing.T) {
		c := lp.connect(t, full)
		rows := make([][]any, 10000)
		for i := range rows {
			rows[i] = []any{int32(100000 + i), strings.Repeat("c", 100)}
		}
		if n, err := c.CopyFrom(ctx, pgx.Identifier{"live"}, []string{"id", "v"}, pgx.CopyFromRows(rows)); err != nil || n != int64(len(rows)) {
			t.Fatalf("CopyFrom: %d %v", n, err)
		}
		var out strings.Builder
		tag, err := c.PgConn().CopyTo(ctx, &out, "COPY (SELECT id FROM live WHERE id >= 100000 ORDER BY id) TO STDOUT")
		if err != nil || tag.RowsAffected() != int64(len(rows)) || !strings.HasPrefix(out.String(), "100000\n100001\n") {
			t.Fatalf("CopyTo: %v %v", tag, err)
		}
		listener := lp.connect(t, full)
		if _, err := listener.Exec(ctx, "LISTEN live_events"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "SELECT pg_notify('live_events', 'hi')"); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if n, err := listener.WaitForNotification(wctx); err != nil || n.Payload != "hi" {
			t.Fatalf("notification: %v %v", n, err)
		}
	})

	t.Run("slow reader", func(t *testing.T) {
		c := lp.connect(t, read)
		var m0, m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		peak := m0.HeapInuse
		rs, err := c.Query(ctx, "SELECT repeat('x', 1000) FROM generate_series(1, 100000)")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rs.Next() {
			if n++; n%10000 == 0 {
				time.Sleep(100 * time.Millisecond)
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
		if rs.Err() != nil || n != 100000 {
			t.Fatalf("%d rows: %v", n, rs.Err())
		}
		if grew := int64(peak) - int64(m0.HeapInuse); grew > 24<<20 {
			t.Fatalf("the heap grew by %d MB while 100 MB went to a slow reader", grew>>20)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		c := lp.connect(t, read)
		var pid int
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := c.Exec(cctx, "SELECT pg_sleep(30)"); err == nil {
			t.Fatal("pg_sleep(30) finished within 300ms")
		}
		waitUntil(t, "the statement still runs on the server", func() bool {
			var n int
			_ = admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep(30)%' AND state = 'active'", pid).Scan(&n)
			return n == 0
		})
	})

	t.Run("revoked mid-query", func(t *testing.T) {
		tok, claims := lp.mint(t, core.AllScopes)
		c := lp.connect(t, tok)
		var pid int
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(300 * time.Millisecond)
			lp.revs.RevokeToken(claims.ID, claims.ExpiresAt)
			lp.gw.Revoke(netio.Revocation{Kind: netio.RevokeToken, Token: claims.ID})
		}()
		_, err := c.Exec(ctx, "SELECT pg_sleep(30)")
		if code(err) != "28P01" && !c.IsClosed() {
			t.Fatalf("revoked mid-query: %v", err)
		}
		waitUntil(t, "the revoked session's server connection is still open", func() bool {
			var n int
			_ = admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n)
			return n == 0
		})
	})

	t.Run("pool exhausted, idle ones on the other loop", func(t *testing.T) {
		small := startLiveProxy(t, pg, passwords, 2)
		tok, _ := small.mint(t, scopeSet(core.ScopeDatabaseRead))
		held := small.connect(t, tok)
		other := small.connect(t, tok)
		start := time.Now()
		if _, err := small.tryConnect(tok); code(err) != "53300" || time.Since(start) > 3*time.Second {
			t.Fatalf("third client of a pool of 2: %v after %v", err, time.Since(start))
		}
		other.Close(ctx)
		// Each new client lands on either loop: the idle connection is
		// parked on one of them, and a client of the other gets it.
		for i := 0; i < 20; i++ {
			c, err := small.tryConnect(tok)
			if err != nil {
				t.Fatalf("client %d with one connection idle: %v", i, err)
			}
			if err := c.QueryRow(ctx, "SELECT 1").Scan(new(int)); err != nil {
				t.Fatal(err)
			}
			c.Close(ctx)
		}
		_ = held
	})

	t.Run("connect cycles", func(t *testing.T) {
		write, _ := lp.mint(t, scopeSet(core.ScopeDatabaseRead, core.ScopeDatabaseWrite))
		errs := make(chan error, 4)
		for w := 0; w < 4; w++ {
			go func() {
				for i := 0; i < 250; i++ {
					c, err := lp.tryConnect(write)
					if err != nil {
						errs <- err
						return
					}
					err = c.QueryRow(ctx, "SELECT 1").Scan(new(int))
					c.Close(ctx)
					if err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for w := 0; w < 4; w++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'helios_write'").Scan(&n); err != nil || n > 8 {
			t.Fatalf("%d server connections of helios_write after the cycles (pool of 8): %v", n, err)
		}
	})

	t.Run("server restart", func(t *testing.T) {
		idle := lp.connect(t, read) // parked when closed below
		if err := idle.QueryRow(ctx, "SELECT 1").Scan(new(int)); err != nil {
			t.Fatal(err)
		}
		idle.Close(ctx)
		c := lp.connect(t, read)
		if err := c.QueryRow(ctx, "SELECT 1").Scan(new(int)); err != nil {
			t.Fatal(err)
		}
		if err := pg.Restart(); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRow(ctx, "SELECT 1").Scan(new(int)); err == nil {
			t.Fatal("a session outlived its server's restart")
		}
		for i := 0; i < 5; i++ {
			c2, err := lp.tryConnect(read)
			if err != nil {
				t.Fatalf("client %d after the restart: %v", i, err)
			}
			if err := c2.QueryRow(ctx, "SELECT 1").Scan(new(int)); err != nil {
				t.Fatalf("client %d after the restart: %v", i, err)
			}
			c2.Close(ctx)
		}
	})
}

// upstreamKey is the pool key of the sessions of a token with scopes
// (database main).
func upstreamKey(t *testing.T, scopes core.ScopeSet) upstream.Key {
	t.Helper()
	r, err := upstream.RoleFor(&core.Claims{Type: core.TypeLive, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return upstream.Key{Role: r, Database: "main"}
}

func scopeSet(ss ...core.Scope) core.ScopeSet {
	var set core.ScopeSet
	for _, s := range ss {
		set = set.With(s)
	}
	return set
}

func waitUntil(t *testing.T, msg string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal(msg)
}
