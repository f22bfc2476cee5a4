package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testupstream"
	"github.com/heliosdb/auth/netio"
)

// warm logs in once with tok, so that the token is in the fast-auth cache:
// its next sessions authenticate on their event loop and are proxied there
// (the first one moved to a goroutine for the RSA exchange).
func (lp *liveProxy) warm(t *testing.T, tok string) {
	t.Helper()
	db := lp.db(t, tok, false)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// idle is the upstream's idle server connections: in the pool and parked
// on the event loops.
func (lp *liveProxy) idle() int { return lp.up.Health().Idle }

// waitFor waits until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// onLoop runs f and checks that the sessions it opened were proxied on
// their event loops.
func onLoop(t *testing.T, f func()) {
	t.Helper()
	loops, goroutines := loopSessions.Get(), goroutineSessions.Get()
	f()
	if n := goroutineSessions.Get() - goroutines; n != 0 {
		t.Fatalf("%d sessions were proxied on goroutines", n)
	}
	if loopSessions.Get() == loops {
		t.Fatal("no session was proxied on its event loop")
	}
}

// TestLoopProxy drives the proxy on its event loops (fast-auth clients in
// plaintext) against MariaDB 10.11 under the race detector: a clean server
// connection is reset and parked on its loop and the loop's next client
// gets it; a reset that fails closes it; a parked one the server ends is
// dropped; with the pool exhausted, one parked on the other loop is
// reclaimed for a client there; revocation and a client leaving mid-query
// end the statement on the server.
func TestLoopProxy(t *testing.T) {
	lp := newLiveProxy(t, testupstream.Started(t, testupstream.StartMariaDB), 2)
	read, _ := lp.Mint(t, core.ScopeSet(0).With(core.ScopeDatabaseRead))
	full, _ := lp.Mint(t, core.AllScopes)
	lp.warm(t, read)
	lp.warm(t, full)
	waitFor(t, "the warm-up connections were not parked", func() bool { return lp.idle() == 2 })

	t.Run("parked and reused", func(t *testing.T) {
		db := lp.db(t, read, false)
		db.SetMaxIdleConns(0) // a new client connection per query
		onLoop(t, func() {
			var first int64
			conn, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&first); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(context.Background(), "SET @x = 1"); err != nil {
				t.Fatal(err)
			}
			conn.Close()
			waitFor(t, "the server connection was not parked", func() bool { return lp.idle() == 2 })
			// The next client on the same loop gets it back, reset.
			for i := 0; i < 20; i++ {
				var id int64
				var x sql.NullInt64
				if err := db.QueryRow("SELECT CONNECTION_ID(), @x").Scan(&id, &x); err != nil {
					t.Fatal(err)
				}
				if x.Valid {
					t.Fatal("a user variable survived into the next client's session")
				}
				if id == first {
					return
				}
			}
			t.Fatal("no client got the parked server connection back")
		})
	})

	t.Run("failed reset closes it", func(t *testing.T) {
		// A client that selected another database leaves cleanly: the
		// reset selects the pool's database again, which has been dropped
		// meanwhile: the server refuses, and the connection is closed.
		if err := lp.up.Provision(context.Background(), []string{"dropped"}, func(string) bool { return false }); err != nil {
			t.Fatal(err)
		}
		cfg := lp.config(read, "dropped")
		onLoop(t, func() {
			db := openDB(t, cfg)
			conn, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var id int64
			if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(context.Background(), "USE main"); err != nil {
				t.Fatal(err)
			}
			if _, err := lp.admin.Exec("DROP DATABASE dropped"); err != nil {
				t.Fatal(err)
			}
			idle := lp.idle()
			conn.Close()
			db.Close()
			lp.waitGone(t, id, "a server connection whose reset failed")
			if lp.idle() != idle {
				t.Fatal("a server connection whose reset failed was kept")
			}
		})
	})

	t.Run("parked one ended by the server", func(t *testing.T) {
		waitFor(t, "nothing parked", func() bool { return lp.idle() > 0 })
		before := lp.up.Health()
		ids := map[int64]bool{}
		rows, err := lp.admin.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'helios_read' AND COMMAND = 'Sleep'")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids[id] = true
		}
		rows.Close()
		for id := range ids {
			if _, err := lp.admin.Exec("KILL CONNECTION ?", id); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "parked server connections the server ended are still counted", func() bool {
			h := lp.up.Health()
			return h.Open == before.Open-len(ids) && h.Idle == before.Idle-len(ids)
		})
		var n int
		if err := lp.db(t, read, false).QueryRow("SELECT 1").Scan(&n); err != nil || n != 1 {
			t.Fatalf("a client after its parked connections ended: %v", err)
		}
	})

	t.Run("exhausted, idle one on the other loop", func(t *testing.T) {
		hold := func() *sql.DB {
			db := lp.db(t, read, false)
			if err := db.Ping(); err != nil {
				t.Fatal(err)
			}
			return db
		}
		onLoop(t, func() {
			held, other := hold(), hold()
			defer held.Close()
			start := time.Now()
			if err := lp.db(t, read, false).Ping(); errNumber(err) != erConCount || time.Since(start) > 3*time.Second {
				t.Fatalf("third client of a pool of 2: %v after %v", err, time.Since(start))
			}
			other.Close()
			// Each new client lands on either loop: the idle connection
			// is parked on one of them, and a client of the other gets it.
			db := lp.db(t, read, false)
			db.SetMaxIdleConns(0)
			for i := 0; i < 20; i++ {
				var n int
				if err := db.QueryRow("SELECT 1").Scan(&n); err != nil {
					t.Fatalf("client %d with one connection idle: %v", i, err)
				}
			}
		})
	})

	t.Run("large LOAD DATA LOCAL", func(t *testing.T) {
		// The file goes to the server as the client sends it, in writes
		// of its own (not gathered), over many reads.
		const rows = 40000
		var file strings.Builder
		for i := 0; i < rows; i++ {
			fmt.Fprintf(&file, "%d\t%s\n", i, strings.Repeat("v", 100))
		}
		gomysql.RegisterReaderHandler("big_load", func() io.Reader { return strings.NewReader(file.String()) })
		defer gomysql.DeregisterReaderHandler("big_load")
		onLoop(t, func() {
			db := lp.db(t, full, false)
			db.SetMaxOpenConns(1)
			if _, err := db.Exec("CREATE TABLE big_load(id INT PRIMARY KEY, v VARCHAR(200))"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("LOAD DATA LOCAL INFILE 'Reader::big_load' INTO TABLE big_load"); err != nil {
				t.Fatal(err)
			}
			var n, sum int
			if err := db.QueryRow("SELECT COUNT(*), SUM(LENGTH(v)) DIV 100 FROM big_load").Scan(&n, &sum); err != nil || n != rows || sum != rows {
				t.Fatalf("%d rows (%d) after LOAD DATA of %d bytes: %v", n, sum, file.Len(), err)
			}
		})
	})

	t.Run("revoked and left mid-query", func(t *testing.T) {
		revoked, c := lp.Mint(t, core.AllScopes)
		lp.warm(t, revoked)
		lp.warm(t, full)
		onLoop(t, func() {
			for _, tok := range []string{revoked, full} {
				conn, err := lp.db(t, tok, false).Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				var id int64
				if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
					t.Fatal(err)
				}
				// BENCHMARK runs for minutes and, unlike SLEEP, never
				// looks at its client's socket: only a KILL ends it.
				t.Cleanup(func() { _, _ = lp.admin.Exec("KILL CONNECTION ?", id) })
				wait := 30 * time.Second
				if tok == revoked {
					go func() {
						time.Sleep(300 * time.Millisecond)
						lp.Revoke(c)
					}()
				} else {
					wait = 300 * time.Millisecond // the client gives up and leaves
				}
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				err = conn.QueryRowContext(ctx, "SELECT BENCHMARK(2000000000, MD5('x'))").Scan(new(int))
				cancel()
				if tok == revoked && (errNumber(err) != erAccessDenied || !strings.Contains(err.Error(), "session ended")) {
					t.Fatalf("revoked mid-query: %v", err)
				}
				if tok == full && err == nil {
					t.Fatal("the BENCHMARK returned within 300ms")
				}
				conn.Close()
				lp.waitGone(t, id, "a session ended mid-query")
			}
		})
	})
}

// TestLoopRelayFraming: the loop proxy's relay finds where each response
// ends in the server's byte stream however it is cut into reads (a packet
// split anywhere, several responses in one read), forwards every byte
// once and in order without waiting for more than the packet under way,
// and puts the gateway's own answer between the responses it was queued
// behind.
func TestLoopRelayFraming(t *testing.T) {
	pkt := func(seq byte, p []byte) []byte {
		b, start := beginPacket(nil, seq)
		return endPacket(append(b, p...), start)
	}
	resp := func(pkts ...[]byte) []byte {
		var b []byte
		for i, p := range pkts {
			b = append(b, pkt(byte(i+1), p)...)
		}
		return b
	}
	row := []byte{3, 'a', 'b', 'c'}
	first := resp([]byte{1}, colPkt(), eofPkt(0, false), row, row, row, eofPkt(serverStatusInTrans, false))
	refusal := AppendERR(nil, 1, erTableAccessDenied, stateSyntaxOrAccessRule, "refused by the gateway")
	rest := resp(prepOK(1, 1), colPkt(), eofPkt(0, false), colPkt(), eofPkt(0, false))
	rest = append(rest, resp(okPkt(serverMoreResultsExist), []byte{1}, colPkt(), eofPkt(0, false), row, eofPkt(0, false))...)
	rest = append(rest, resp(okPkt(0))...)
	stream := append(append([]byte(nil), first...), rest...)
	want := append(append(append([]byte(nil), first...), refusal...), rest...)
	for _, chunk := range []int{1, 2, 3, 5, 7, 11, 64, len(stream)} {
		lp := &loopProxy{state: lpReady}
		lp.replies = []lpReply{{kind: expResult}, {gw: true, msg: refusal}, {kind: expPrepare}, {kind: expResult}, {kind: expOne}}
		b := &netio.Backend{}
		var buf, out []byte
		for i := 0; i < len(stream); i += chunk {
			buf = append(buf, stream[i:min(i+chunk, len(stream))]...)
			n, o, act := lp.relay(b, buf, out)
			if act != netio.Continue {
				t.Fatalf("chunk %d: action %v", chunk, act)
			}
			out, buf = o, append([]byte(nil), buf[n:]...)
			if len(buf) >= packetHeaderLen {
				if size := int(buf[0]) | int(buf[1])<<8 | int(buf[2])<<16; len(buf) >= packetHeaderLen+size {
					t.Fatalf("chunk %d: a whole packet left unconsumed", chunk)
				}
			}
		}
		if string(out) != string(want) || len(buf) != 0 {
			t.Fatalf("chunk %d: forwarded %d bytes (%d left), want %d", chunk, len(out), len(buf), len(want))
		}
		if len(lp.replies) != 0 || lp.active || lp.status != 0 {
			t.Fatalf("chunk %d: %d replies owed, active %v, status %#x", chunk, len(lp.replies), lp.active, lp.status)
		}
	}
}
