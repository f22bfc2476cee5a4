package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/heliosdb/auth/core"
)

// dialerFrom returns a dialer whose connections leave from the loopback
// address ip (127.0.0.2 reaches a 127.0.0.1 listener on Linux), failing the
// test when the address cannot be bound.
func dialerFrom(t *testing.T, ip string) *net.Dialer {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("cannot use %s as a source address: %v", ip, err)
	}
	ln.Close()
	return d
}

// redisFrom is a one-connection go-redis client for database db whose
// connections leave from dialer (nil: the default).
func redisFrom(d *daemon, password string, db int, dialer *net.Dialer) *redis.Client {
	opt := &redis.Options{Addr: d.Redis, Password: password, DB: db, DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second,
		MaxRetries: -1, PoolSize: 1}
	if dialer != nil {
		opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		}
	}
	return redis.NewClient(opt)
}

// mongoFrom connects the mongo driver with PLAIN over TLS, its connections
// leaving from dialer (nil: the default).
func mongoFrom(t *testing.T, d *daemon, token string, dialer *net.Dialer) *mongo.Client {
	t.Helper()
	o := options.Client().ApplyURI(mongoURI(d, token, "")).SetServerSelectionTimeout(5 * time.Second).SetConnectTimeout(5 * time.Second)
	if dialer != nil {
		o.SetDialer(dialer)
	}
	c, err := mongo.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// TestRedisMongoIPAllowlist: a token whose allowed_ips is 127.0.0.2 is
// refused from 127.0.0.1 and accepted from 127.0.0.2, on Redis and MongoDB.
func TestRedisMongoIPAllowlist(t *testing.T) {
	d := startDaemon(t)
	from2 := dialerFrom(t, "127.0.0.2")
	ctx := mongoCtx(t)
	bearer := d.NewUser(t)
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "pinned", "allowed_ips": []string{"127.0.0.2"}})

	r1 := redisFrom(d, tok, 0, nil)
	defer r1.Close()
	if err := r1.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") || !strings.Contains(err.Error(), core.ErrAddrNotAllowed.Message) {
		t.Fatalf("redis from 127.0.0.1: %v", err)
	}
	r2 := redisFrom(d, tok, 0, from2)
	defer r2.Close()
	if err := r2.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis from 127.0.0.2: %v", err)
	}

	err := mongoFrom(t, d, tok, nil).Ping(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "(AuthenticationFailed)") || !strings.Contains(err.Error(), core.ErrAddrNotAllowed.Message) {
		t.Fatalf("mongo from 127.0.0.1: %v", err)
	}
	if err := mongoFrom(t, d, tok, from2).Ping(ctx, nil); err != nil {
		t.Fatalf("mongo from 127.0.0.2: %v", err)
	}
	checkAuthMetrics(t, d, "redis", []string{tok}, "ok", "forbidden")
	checkAuthMetrics(t, d, "mongodb", []string{tok}, "ok", "forbidden")
}

// TestRedisMongoTestTokenDatabases: a test token reaches only registered
// test databases — MongoDB by each command's $db, Redis by logical database
// n registered as "db<n>".
func TestRedisMongoTestTokenDatabases(t *testing.T) {
	d := startDaemon(t)
	ctx := mongoCtx(t)
	bearer := d.NewUser(t)
	for _, name := range []string{"analytics_test", "db3"} {
		d.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": name, "test": true}, nil)
	}
	d.MustJSON(t, http.StatusCreated, "POST", "/v1/databases", bearer, map[string]any{"name": "prod"}, nil)
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "ci", "type": "test"})
	if !strings.HasPrefix(tok, "hdb_test_") {
		t.Fatalf("test token %.9s…", tok)
	}

	r0 := redisFrom(d, tok, 0, nil)
	defer r0.Close()
	err := r0.Get(ctx, "k").Err()
	if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") || !strings.Contains(err.Error(), core.ErrTestDatabaseOnly.Message) || !strings.Contains(err.Error(), `"db0"`) {
		t.Fatalf("redis db 0: %v", err)
	}
	if err := r0.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis PING on db 0: %v", err)
	}
	r4 := redisFrom(d, tok, 4, nil) // go-redis sends SELECT 4 after HELLO
	defer r4.Close()
	if err := r4.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), core.ErrTestDatabaseOnly.Message) {
		t.Fatalf("redis SELECT 4: %v", err)
	}
	r3 := redisFrom(d, tok, 3, nil)
	defer r3.Close()
	if err := r3.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "no upstream database is configured") {
		t.Fatalf("redis db 3 (a test database): %v", err)
	}

	c := mongoFrom(t, d, tok, nil)
	var ce mongo.CommandError
	err = c.Database("prod").Collection("orders").FindOne(ctx, bson.D{}).Err()
	if !errors.As(err, &ce) || ce.Code != 13 || !strings.Contains(ce.Message, core.ErrTestDatabaseOnly.Message) || !strings.Contains(ce.Message, `"prod"`) {
		t.Fatalf("mongo find on prod: %v", err)
	}
	err = c.Database("analytics_test").Collection("orders").FindOne(ctx, bson.D{}).Err()
	if !errors.As(err, &ce) || ce.Code != 115 {
		t.Fatalf("mongo find on analytics_test: %v", err)
	}
	checkAuthMetrics(t, d, "redis", []string{tok}, "ok", "forbidden")
	checkAuthMetrics(t, d, "mongodb", []string{tok}, "ok", "forbidden")
}

// failsWithin runs op until it fails with an error naming want, and fails
// the test if that takes longer than bound from since.
func failsWithin(t *testing.T, what string, since time.Time, bound time.Duration, want string, op func() error) {
	t.Helper()
	var err error
	for {
		if err = op(); err != nil && strings.Contains(err.Error(), want) {
			if el := time.Since(since); el > bound {
				t.Fatalf("%s: refused after %v, want within %v", what, el, bound)
			}
			t.Logf("%s: refused %v after the revoke: %v", what, time.Since(since).Round(time.Millisecond), err)
			return
		}
		if time.Since(since) > bound {
			t.Fatalf("%s: still not refused after %v: %v", what, bound, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisMongoOpenSessionRevoked: open go-redis and mongo-driver
// connections whose token is revoked through the REST API fail their next
// command, naming the revocation, within a second (MongoDB: three, for the
// driver's reconnect).
func TestRedisMongoOpenSessionRevoked(t *testing.T) {
	d := startDaemon(t)
	ctx := mongoCtx(t)
	bearer := d.NewUser(t)
	tok, id := d.CreateToken(t, bearer, map[string]any{"name": "open-sessions"})

	r := redisFrom(d, tok, 0, nil)
	defer r.Close()
	if err := r.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis before: %v", err)
	}
	m := mongoFrom(t, d, tok, nil)
	coll := m.Database("main").Collection("orders")
	var ce mongo.CommandError
	if err := coll.FindOne(ctx, bson.D{}).Err(); !errors.As(err, &ce) || ce.Code != 115 {
		t.Fatalf("mongo before: %v", err)
	}

	d.Revoke(t, bearer, id)
	revoked := time.Now()
	failsWithin(t, "redis", revoked, time.Second, core.MsgRevoked, func() error { return r.Ping(ctx).Err() })
	// The driver learns it on a new connection after the server ended the
	// old one (its next login is refused naming the revocation): allow
	// its reconnect on a loaded machine.
	failsWithin(t, "mongodb", revoked, 3*time.Second, core.MsgRevoked, func() error {
		err := coll.FindOne(ctx, bson.D{}).Err()
		if errors.As(err, &ce) && ce.Code == 115 {
			return nil // still served
		}
		return err
	})
}

// TestRedisMongoIdleSessionEnded: an authenticated connection that sends
// nothing is ended by the gateway when its token is revoked — Redis with
// "-NOAUTH <reason>" then a close, MongoDB with the close alone (it has no
// unsolicited server message) — within the transport's re-check interval
// (a second by default) plus a second of slack for a loaded machine.
func TestRedisMongoIdleSessionEnded(t *testing.T) {
	d := startDaemon(t)
	bearer := d.NewUser(t)
	tok, id := d.CreateToken(t, bearer, map[string]any{"name": "idle-sessions"})

	rc, err := net.DialTimeout("tcp", d.Redis, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(rc, "AUTH "+tok+"\r\n")
	rr := bufio.NewReader(rc)
	if l, err := rr.ReadString('\n'); l != "+OK\r\n" {
		t.Fatalf("redis AUTH: %q %v", l, err)
	}

	mc, err := net.DialTimeout("tcp", d.Mongo, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	mc.SetDeadline(time.Now().Add(10 * time.Second))
	mc.Write(rawOpMsg(t, 1, 0, bson.D{{Key: "saslStart", Value: 1}, {Key: "mechanism", Value: "PLAIN"},
		{Key: "payload", Value: bson.Binary{Data: []byte("\x00default\x00" + tok)}}, {Key: "$db", Value: "$external"}}))
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(mc, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(binary.LittleEndian.Uint32(hdr))-16)
	if _, err := io.ReadFull(mc, body); err != nil || !bytes.Contains(body, []byte("conversationId")) || !bytes.Contains(body, []byte("done")) {
		t.Fatalf("mongo saslStart: %q %v", body, err)
	}

	d.Revoke(t, bearer, id)
	revoked := time.Now()
	const idleBound = 2 * time.Second
	rc.SetReadDeadline(revoked.Add(idleBound))
	l, err := rr.ReadString('\n')
	if !strings.HasPrefix(l, "-NOAUTH "+core.MsgRevoked) {
		t.Fatalf("redis, idle: %q %v after %v", l, err, time.Since(revoked))
	}
	if _, err := rr.ReadByte(); err != io.EOF {
		t.Fatalf("redis, idle: the connection is still open (%v)", err)
	}
	t.Logf("redis: ended %v after the revoke: %q", time.Since(revoked).Round(time.Millisecond), strings.TrimSpace(l))

	mc.SetReadDeadline(revoked.Add(idleBound))
	if n, err := mc.Read(hdr); n != 0 || err != io.EOF {
		t.Fatalf("mongo, idle: read %d bytes, %v after %v", n, err, time.Since(revoked))
	}
	t.Logf("mongo: closed %v after the revoke", time.Since(revoked).Round(time.Millisecond))
}
