package e2e

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// floodConn opens a connection from source address src to the MySQL port
// and reads the server's first packet: true when it is the handshake (the
// connection holds a slot and is kept open), false when it is error 1040
// "Too many connections" (the refusal, which MySQL sends in place of the
// handshake). Anything else is an error.
func floodConn(d *daemon, src net.IP) (net.Conn, bool, error) {
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
	c, err := dialer.Dial("tcp", d.MySQL)
	if err != nil {
		return nil, false, fmt.Errorf("dial from %s: %w", src, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		c.Close()
		return nil, false, fmt.Errorf("from %s: first packet: %w", src, err)
	}
	body := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	if _, err := io.ReadFull(c, body); err != nil || len(body) < 3 {
		c.Close()
		return nil, false, fmt.Errorf("from %s: first packet body %q: %v", src, body, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	switch {
	case body[0] == 10:
		return c, true, nil
	case body[0] == 0xff && binary.LittleEndian.Uint16(body[1:]) == 1040 && strings.Contains(string(body), "Too many connections"):
		c.Close()
		return nil, false, nil
	}
	c.Close()
	return nil, false, fmt.Errorf("from %s: unexpected first packet %q", src, body)
}

// holdFrom opens connections from src until the server refuses one or
// limit are held, and returns the held ones.
func holdFrom(t *testing.T, d *daemon, src net.IP, limit int) []net.Conn {
	t.Helper()
	var held []net.Conn
	for len(held) < limit {
		c, ok, err := floodConn(d, src)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		held = append(held, c)
	}
	return held
}

// openGauge sums helios_gateway_connections_open over the wire protocols: the
// connections the daemon has accepted and not closed yet.
func openGauge(t *testing.T, d *daemon) int {
	t.Helper()
	status, body := d.Do(t, "GET", "/metrics", "", nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	// The wire protocols' connections, which hold slots of the cap; the
	// HTTP listener's (protocol="rest", this request's among them) do not.
	n := 0
	for _, m := range regexp.MustCompile(`(?m)^helios_gateway_connections_open\{([^}]*)\} (\d+)$`).FindAllStringSubmatch(string(body), -1) {
		if strings.Contains(m[1], `protocol="rest"`) {
			continue
		}
		v, _ := strconv.Atoi(m[2])
		n += v
	}
	return n
}

func waitGauge(t *testing.T, d *daemon, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for openGauge(t, d) != want {
		if time.Now().After(deadline) {
			t.Fatalf("open connections %d, want %d", openGauge(t, d), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connCapClients connects from 127.0.0.1 with each real driver and runs one
// round trip; each returns its error (nil when served).
func connCapClients(t *testing.T, d *daemon, tok string) map[string]func() error {
	ctx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 20*time.Second)
	}
	pg := func(mode string) func() error {
		return func() error {
			c, cancel := ctx()
			defer cancel()
			conn, err := pgx.Connect(c, pgURL(d.PG, tok, mode))
			if err != nil {
				return err
			}
			defer conn.Close(c)
			var one int
			return conn.QueryRow(c, "SELECT 1").Scan(&one)
		}
	}
	rd := func(tlsOn bool) func() error {
		return func() error {
			opt := &redis.Options{Addr: d.Redis, Password: tok, DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, MaxRetries: -1}
			if tlsOn {
				opt.TLSConfig = &tls.Config{InsecureSkipVerify: true}
			}
			c := redis.NewClient(opt)
			defer c.Close()
			cx, cancel := ctx()
			defer cancel()
			return c.Ping(cx).Err()
		}
	}
	return map[string]func() error{
		"pgx sslmode=require": pg("require"),
		"pgx sslmode=disable": pg("disable"),
		"go-redis":            rd(false),
		"go-redis TLS":        rd(true),
		"go-sql-driver/mysql": func() error {
			db := mysqlDB(t, d, tok, "skip-verify")
			defer db.Close()
			return db.Ping()
		},
		"mongo-driver": func() error {
			uri := "mongodb://default:" + url.QueryEscape(tok) + "@" + d.Mongo + "/main?authMechanism=PLAIN&tls=true&tlsInsecure=true"
			c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(4 * time.Second).SetConnectTimeout(4 * time.Second))
			if err != nil {
				return err
			}
			cx, cancel := ctx()
			defer cancel()
			defer c.Disconnect(cx)
			return c.Ping(cx, nil)
		},
	}
}

// TestConnCapFairness reproduces the connection flood of the attack sweep
// against the real heliosd (--max-conns 1000, --max-conns-per-ip 100):
// eleven loopback addresses, 127.0.0.2 to 127.0.0.12, each open 100
// connections (its per-address limit). They fill only the unreserved 90%
// of the cap (plus the first few connections of the addresses that came
// last), and a client from 127.0.0.1 still connects with pgx, go-redis,
// go-sql-driver/mysql and mongo-driver. Then the rest of the cap is filled
// from addresses holding few connections, and each driver, and psql, get
// their protocol's own "too many connections" error: FATAL 53300 for pgx
// and psql even over TLS (not "server refused TLS connection"), "-ERR max
// number of clients reached" for go-redis, 1040 for MySQL, and the
// refusal's reason in the MongoDB handshake's error.
func TestConnCapFairness(t *testing.T) {
	requirePsql(t)
	const maxConns, perIP, flooders = 1000, 100, 11
	d := startDaemon(t, withArgs("--max-conns", strconv.Itoa(maxConns), "--max-conns-per-ip", strconv.Itoa(perIP),
		"--handshake-timeout", "3m"))
	tok := scopedToken(t, d)

	// The flood: every address at once, each up to its limit.
	var mu sync.Mutex
	var flood []net.Conn
	perAddr := map[string]int{}
	var wg sync.WaitGroup
	for i := 2; i < 2+flooders; i++ {
		src := net.IPv4(127, 0, 0, byte(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []net.Conn
			for range perIP {
				c, ok, err := floodConn(d, src)
				if err != nil {
					t.Error(err)
					break
				}
				if ok {
					mine = append(mine, c)
				}
			}
			mu.Lock()
			flood = append(flood, mine...)
			perAddr[src.String()] = len(mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range flood {
			c.Close()
		}
	})
	if t.Failed() {
		return
	}
	unreserved := maxConns - maxConns/10
	t.Logf("the flood holds %d of %d connections: %v", len(flood), maxConns, perAddr)
	if len(flood) < unreserved || len(flood) > unreserved+flooders*8 {
		t.Fatalf("the flood holds %d connections, want the unreserved %d plus at most 8 per address", len(flood), unreserved)
	}
	for i := 2; i < 2+flooders; i++ {
		if c, ok, err := floodConn(d, net.IPv4(127, 0, 0, byte(i))); err != nil || ok {
			if c != nil {
				c.Close()
			}
			t.Fatalf("flood address 127.0.0.%d got one more connection (%v)", i, err)
		}
	}
	waitGauge(t, d, len(flood))

	// A real client still gets in, on every protocol.
	for name, connect := range connCapClients(t, d, tok) {
		if err := connect(); err != nil {
			t.Errorf("%s from 127.0.0.1 during the flood: %v", name, err)
		}
	}
	if t.Failed() {
		return
	}
	waitGauge(t, d, len(flood))

	// Now fill the cap for real, from addresses holding few connections.
	var filler []net.Conn
	t.Cleanup(func() {
		for _, c := range filler {
			c.Close()
		}
	})
	for i := 20; ; i++ {
		got := holdFrom(t, d, net.IPv4(127, 0, 0, byte(i)), perIP)
		filler = append(filler, got...)
		if len(got) == 0 {
			break
		}
		if len(got) > 8 {
			t.Fatalf("127.0.0.%d got %d connections past the unreserved part", i, len(got))
		}
	}
	if held := len(flood) + len(filler); held != maxConns {
		t.Fatalf("%d connections held when a new address is refused, want the cap %d", held, maxConns)
	}
	waitGauge(t, d, maxConns)

	// Truly full: every client hears why, in its protocol's words.
	want := map[string]func(error) bool{
		"pgx sslmode=require": pgTooMany,
		"pgx sslmode=disable": pgTooMany,
		"go-redis":            func(err error) bool { return err.Error() == "ERR max number of clients reached" },
		"go-redis TLS":        func(err error) bool { return err.Error() == "ERR max number of clients reached" },
		"go-sql-driver/mysql": func(err error) bool {
			return mysqlErrNumber(err) == 1040 && strings.Contains(err.Error(), "Too many connections")
		},
		"mongo-driver": func(err error) bool {
			return strings.Contains(err.Error(), "(ResourceExhausted) connection refused because too many open connections")
		},
	}
	for name, connect := range connCapClients(t, d, tok) {
		err := connect()
		switch {
		case err == nil:
			t.Errorf("%s was served over the cap", name)
		case !want[name](err):
			t.Errorf("%s over the cap: %v", name, err)
		default:
			t.Logf("%s over the cap: %v", name, err)
		}
	}
	for _, mode := range []string{"require", "prefer"} {
		out, err := psql(t, pgURL(d.PG, tok, mode), "SELECT 1")
		if err == nil || !strings.Contains(out, "FATAL:  sorry, too many clients already") {
			t.Errorf("psql sslmode=%s over the cap: %v\n%s", mode, err, out)
		}
	}
	// The refusals held no slot and are gone.
	waitGauge(t, d, maxConns)
}

// pgTooMany reports whether err is PostgreSQL's FATAL 53300, and nothing
// that blames TLS.
func pgTooMany(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "53300" && pe.Severity == "FATAL" &&
		pe.Message == "sorry, too many clients already" && !strings.Contains(err.Error(), "refused TLS")
}
