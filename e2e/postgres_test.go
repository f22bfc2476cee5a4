package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/heliosdb/auth/core"
)

// heliosdHasFlags skips the test when the daemon does not know a flag yet
// (the limit flags live in heliosd's config, owned apart from the gateway).
func heliosdHasFlags(t *testing.T, flags ...string) {
	t.Helper()
	out, _ := exec.Command(buildBinary(t, "heliosd"), "-h").CombinedOutput()
	for _, f := range flags {
		if !bytes.Contains(out, []byte("-"+f+" ")) && !bytes.Contains(out, []byte("-"+f+"\n")) && !bytes.Contains(out, []byte("-"+f+"=")) {
			t.Fatalf("heliosd has no --%s flag", f)
		}
	}
}

// issuerUp reports whether the daemon serves the issuer's API to this
// client over plain HTTP.
func issuerUp(d *daemon) bool {
	resp, err := http.Post(d.URL("/v1/auth/login"), "application/json", strings.NewReader(`{}`))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden
}

// pgToken returns a live token with every scope: from the issuer when it
// runs, else minted with the data directory's keyring.
func pgToken(t *testing.T, d *daemon) string {
	t.Helper()
	if issuerUp(d) {
		return d.NewUser(t)
	}
	return d.Mint(t, core.Claims{Account: 1, Scopes: core.AllScopes})
}

func pgURL(addr, token, sslmode string) string {
	host, port, _ := net.SplitHostPort(addr)
	return "postgresql://default:" + token + "@" + host + ":" + port + "/main?sslmode=" + sslmode + "&connect_timeout=10"
}

// psql runs psql -c query and returns its combined output and error.
func psql(t *testing.T, url, query string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", "-X", "-A", "-t", url, "-c", query)
	cmd.Env = append(os.Environ(), "PGPASSWORD=", "PGSSLROOTCERT=", "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func requirePsql(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatal("psql is not installed: run scripts/install-deps.sh (make test does)")
	}
}

func TestPostgresPsql(t *testing.T) {
	requirePsql(t)
	d := startDaemon(t)
	tok := pgToken(t, d)
	for _, mode := range []string{"require", "prefer"} {
		out, err := psql(t, pgURL(d.PG, tok, mode), "SELECT 1")
		if err != nil || strings.TrimSpace(out) != "1" {
			t.Fatalf("sslmode=%s: %v\n%s", mode, err, out)
		}
	}
	out, err := psql(t, pgURL(d.PG, tok, "require"), "SELECT * FROM helios_whoami()")
	if err != nil || !strings.Contains(out, "tok_") {
		t.Fatalf("whoami: %v\n%s", err, out)
	}
	out, _ = psql(t, pgURL(d.PG, tok, "require"), "DROP TABLE users")
	if !strings.Contains(out, "no upstream database is configured") {
		t.Fatalf("other statement: %s", out)
	}
	for name, c := range map[string]struct{ tok, want string }{
		"tampered": {tamper(tok), core.MsgInvalid},
		"expired":  {d.ExpiredToken(t), core.MsgExpired},
	} {
		out, err := psql(t, pgURL(d.PG, c.tok, "require"), "SELECT 1")
		if err == nil || !strings.Contains(out, "FATAL:  "+c.want) {
			t.Fatalf("%s token: %v\n%s", name, err, out)
		}
	}
	if strings.Contains(d.Logs(), tok) || strings.Contains(d.Logs(), tok[9:30]) {
		t.Fatal("the daemon logged a token")
	}
	if status, body := d.Do(t, "GET", "/metrics", "", nil); status == http.StatusOK {
		for _, want := range []string{
			`helios_gateway_auth_total{protocol="postgres",outcome="ok"} 4`, // require, prefer, whoami, DROP
			`helios_gateway_auth_total{protocol="postgres",outcome="invalid"} 1`,
			`helios_gateway_auth_total{protocol="postgres",outcome="expired"} 1`,
			`helios_gateway_connections_open{protocol="postgres"} 0`,
			`helios_gateway_handshake_seconds_count{protocol="postgres"} 4`,
		} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	}
}

func TestPostgresRevokedToken(t *testing.T) {
	requirePsql(t)
	d := startDaemon(t)
	bearer := d.NewUser(t)
	tok, id := d.CreateToken(t, bearer, map[string]any{"name": "pg", "scopes": []string{"database:read"}})
	if out, err := psql(t, pgURL(d.PG, tok, "require"), "SELECT 1"); err != nil {
		t.Fatalf("before revocation: %v\n%s", err, out)
	}
	ctx := context.Background()
	open, err := pgx.Connect(ctx, pgURL(d.PG, tok, "require"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(ctx)
	d.Revoke(t, bearer, id)
	var out string
	for i := 0; i < 50; i++ { // the node follows the issuer's log
		out, _ = psql(t, pgURL(d.PG, tok, "require"), "SELECT 1")
		if strings.Contains(out, core.MsgRevoked) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out, "FATAL:  "+core.MsgRevoked) {
		t.Fatalf("revoked token: %s", out)
	}
	_, err = pgx.Connect(ctx, pgURL(d.PG, tok, "require"))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28P01" {
		t.Fatalf("pgx with a revoked token: %v", err)
	}
	// A session opened before the revocation is ended by the gateway
	// without waiting for a command: its FATAL is already on the wire.
	raw := open.PgConn().Conn()
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(raw)
	if !bytes.Contains(got, []byte("28P01")) || !bytes.Contains(got, []byte(core.MsgRevoked)) {
		t.Fatalf("open session after revocation got %q", got)
	}
}

// TestPostgresPreferNeverSendsTokenInPlaintext points psql in prefer mode at
// a listener on 127.0.0.2 whose daemon trusts no loopback address for
// plaintext (Linux gives the client the source address 127.0.0.1, so the
// allow list names only a documentation network): the client is remote to
// it. A failed
// login over TLS makes libpq retry without TLS; the retry must be refused
// with 28000 before the password is asked for, so the token crosses the
// wire once, inside TLS.
func TestPostgresPreferNeverSendsTokenInPlaintext(t *testing.T) {
	requirePsql(t)
	heliosdHasFlags(t, "plaintext-allow")
	if c, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Fatalf("no 127.0.0.2 on this machine: %v", err)
	} else {
		c.Close()
	}
	d := startDaemon(t, withHost("127.0.0.2"), withArgs("--plaintext-allow=192.0.2.0/24"))
	tok := pgToken(t, d)
	if out, err := psql(t, pgURL(d.PG, tok, "prefer"), "SELECT 1"); err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("prefer with a live token: %v\n%s", err, out)
	}
	before := strings.Count(d.Logs(), "authentication failed")
	out, err := psql(t, pgURL(d.PG, tamper(tok), "prefer"), "SELECT 1")
	if err == nil || !strings.Contains(out, core.MsgInvalid) || !strings.Contains(out, "connection is insecure (try using sslmode=require)") {
		t.Fatalf("prefer with a bad token: %v\n%s", err, out)
	}
	time.Sleep(100 * time.Millisecond)
	logs := d.Logs()
	if n := strings.Count(logs, "authentication failed") - before; n != 1 {
		t.Fatalf("the token was checked %d times, want once (over TLS):\n%s", n, logs)
	}
	if !strings.Contains(logs, "outcome=tls_required") {
		t.Fatalf("no tls_required refusal logged:\n%s", logs)
	}
	out, err = psql(t, pgURL(d.PG, tok, "disable"), "SELECT 1")
	if err == nil || !strings.Contains(out, "FATAL:  connection is insecure") {
		t.Fatalf("sslmode=disable from a remote address: %v\n%s", err, out)
	}
}

func TestPostgresPgx(t *testing.T) {
	d := startDaemon(t)
	tok := pgToken(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, url := range []string{
		pgURL(d.PG, tok, "require"),
		pgURL(d.PG, tok, "require") + "&default_query_exec_mode=simple_protocol",
		pgURL(d.PG, tok, "require") + "&sslnegotiation=direct",
		pgURL(d.PG, tok, "require") + "&max_protocol_version=3.2", // negotiated down to 3.0
		pgURL(d.PG, tok, "disable"),
	} {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("%s: %v", url[strings.Index(url, "?"):], err)
		}
		var one int32
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1: %v %d", err, one)
		}
		var id, typ, scopes, exp string
		if err := conn.QueryRow(ctx, "SELECT * FROM helios_whoami()").Scan(&id, &typ, &scopes, &exp); err != nil || !strings.HasPrefix(id, "tok_") || typ != "live" {
			t.Fatalf("whoami: %v %s %s", err, id, typ)
		}
		var user, version, enc string
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != "default" {
			t.Fatalf("current_user: %v %q", err, user)
		}
		if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil || !strings.HasPrefix(version, "PostgreSQL ") {
			t.Fatalf("version: %v %q", err, version)
		}
		if err := conn.QueryRow(ctx, "SHOW client_encoding").Scan(&enc); err != nil || enc != "UTF8" {
			t.Fatalf("SHOW: %v %q", err, enc)
		}
		if err := conn.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		// pgx sends its CancelRequest on a new connection, inside TLS
		// when the session uses TLS; nothing runs, so it just ends.
		if err := conn.PgConn().CancelRequest(ctx); err != nil {
			t.Fatalf("cancel request: %v", err)
		}
		_, err = conn.Exec(ctx, "INSERT INTO t VALUES (1)")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "0A000" {
			t.Fatalf("other statement: %v", err)
		}
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("after an error: %v", err)
		}
		conn.Close(ctx)
	}
	readless := d.Mint(t, core.Claims{Account: 1, Scopes: core.ScopeSet(0).With(core.ScopeBillingRead)})
	for name, c := range map[string]struct{ tok, code, msg string }{
		"tampered": {tamper(tok), "28P01", core.MsgInvalid},
		"expired":  {d.ExpiredToken(t), "28P01", core.MsgExpired},
		"no scope": {readless, "42501", "Token does not have required scope: database:read"},
	} {
		conn, err := pgx.Connect(ctx, pgURL(d.PG, c.tok, "require"))
		if err == nil {
			var one int
			err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
			conn.Close(ctx)
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != c.code || pe.Message != c.msg {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// pgServed checks that the daemon still answers a real client.
func pgServed(t *testing.T, d *daemon, tok string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL(d.PG, tok, "require"))
	if err != nil {
		t.Fatalf("the next client is not served: %v", err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the next client is not served: %v", err)
	}
}

// rawPG sends b on a new connection and returns what the server says until
// it closes (or 5 seconds pass).
func rawPG(t *testing.T, addr string, b []byte, keepOpen bool) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(b)
	if !keepOpen {
		c.(*net.TCPConn).CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server neither answered nor closed within 5s (got %q)", out)
	}
	return out
}

func TestPostgresBadInput(t *testing.T) {
	d := startDaemon(t)
	tok := pgToken(t, d)
	junk := make([]byte, 4096)
	rand.Read(junk)
	startup := []byte{0, 0, 0, 0, 0, 3, 0, 0}
	startup = append(startup, "user\x00default\x00database\x00main\x00\x00"...)
	binary.BigEndian.PutUint32(startup, uint32(len(startup)))
	for name, in := range map[string][]byte{
		"random bytes":      junk,
		"truncated startup": startup[:len(startup)-5],
		"1 GiB length":      {0x40, 0, 0, 0, 0, 3, 0, 0},
		"1 GiB message":     append(append([]byte(nil), startup...), 'p', 0x40, 0, 0, 0),
		"http":              []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	} {
		out := rawPG(t, d.PG, in, name == "1 GiB length" || name == "1 GiB message")
		if len(out) > 0 && !bytes.Contains(out, []byte("E")) && !bytes.HasPrefix(out, []byte("R")) {
			t.Fatalf("%s: unexpected answer %q", name, out)
		}
		pgServed(t, d, tok)
	}
}

func TestPostgresLimits(t *testing.T) {
	heliosdHasFlags(t, "handshake-timeout", "max-conns-per-ip", "idle-timeout")
	d := startDaemon(t, withArgs("--handshake-timeout=500ms", "--max-conns-per-ip=8", "--idle-timeout=1s"))
	tok := pgToken(t, d)
	t.Run("idle", func(t *testing.T) {
		ctx := context.Background()
		for _, mode := range []string{"disable", "require"} { // event loop and TLS goroutine
			conn, err := pgx.Connect(ctx, pgURL(d.PG, tok, mode))
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(1600 * time.Millisecond)
			var one int
			err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
			conn.Close(ctx)
			if err == nil {
				t.Fatalf("sslmode=%s: an idle session outlived --idle-timeout", mode)
			}
		}
		if status, body := d.Do(t, "GET", "/metrics", "", nil); status == http.StatusOK &&
			!bytes.Contains(body, []byte(`helios_gateway_limit_hits_total{protocol="postgres",limit="idle_timeout"} 2`)) {
			t.Fatalf("idle timeouts not counted:\n%s", body)
		}
	})
	t.Run("slowloris", func(t *testing.T) {
		c, err := net.Dial("tcp", d.PG)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.Write([]byte{0, 0, 0, 40, 0, 3}) // and never the rest
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		out, _ := io.ReadAll(c)
		if !bytes.Contains(out, []byte("canceling authentication due to timeout")) || time.Since(start) > 3*time.Second {
			t.Fatalf("after %v: %q", time.Since(start), out)
		}
		pgServed(t, d, tok)
	})
	t.Run("connections", func(t *testing.T) {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		// Dial past the limit at once (the 500ms handshake deadline
		// would otherwise free slots), then look for the refusals.
		for i := 0; i < 12; i++ {
			c, err := net.Dial("tcp", d.PG)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		var refused []byte
		for _, c := range held {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if b, _ := io.ReadAll(c); len(b) > 0 {
				refused = append(refused, b...)
			}
		}
		if !bytes.Contains(refused, []byte("53300")) {
			t.Fatalf("no 53300 refusal: %q", refused)
		}
		for _, c := range held {
			c.Close()
		}
		held = nil
		time.Sleep(100 * time.Millisecond)
		pgServed(t, d, tok)
	})
}

// TestPostgresNoDescriptorLeak opens and drops many connections of every
// kind from 8 concurrent clients (TLS and plaintext logins, failed logins,
// garbage, hang-ups in the middle of a TLS handshake) and checks that the
// daemon's descriptor and goroutine counts return to where they were.
func TestPostgresNoDescriptorLeak(t *testing.T) {
	d := startDaemon(t)
	tok := pgToken(t, d)
	fds := func() int {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(d.PID()) + "/fd")
		if err != nil {
			t.Skip("no /proc")
		}
		return len(ents)
	}
	ctx := context.Background()
	one := func(i int) error {
		switch i % 5 {
		case 0, 1:
			conn, err := pgx.Connect(ctx, pgURL(d.PG, tok, []string{"require", "disable"}[i%2]))
			if err != nil {
				return err
			}
			var one int
			err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
			conn.Close(ctx)
			return err
		case 2:
			_, _ = pgx.Connect(ctx, pgURL(d.PG, tamper(tok), "require"))
		default:
			c, err := net.Dial("tcp", d.PG)
			if err != nil {
				return err
			}
			if i%5 == 3 {
				c.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f, 0x16, 0x03, 0x01}) // SSLRequest, then half a ClientHello
			} else {
				c.Write([]byte("garbage that is not a startup packet"))
			}
			c.Close()
		}
		return nil
	}
	round := func() {
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					if err := one(w + i); err != nil {
						t.Error(err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
	}
	goroutines := func() int { // from /metrics, -1 when not served
		status, body := d.Do(t, "GET", "/metrics", "", nil)
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "go_goroutines "); ok && status == http.StatusOK {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		return -1
	}
	round()
	time.Sleep(300 * time.Millisecond)
	before, g0 := fds(), goroutines()
	round()
	round()
	var after, g1 int
	for i := 0; i < 50; i++ {
		if after, g1 = fds(), goroutines(); after <= before && g1 <= g0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after > before || g1 > g0 {
		t.Fatalf("daemon descriptors %d → %d, goroutines %d → %d", before, after, g0, g1)
	}
}
