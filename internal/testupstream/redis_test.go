package testupstream

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestRedis starts Redis and checks what heliosd's proxy relies on: the
// admin URL logs in over TCP (and a wrong password does not), the server
// is the test one (no persistence, 16 databases, loopback only), a user
// made with ACL SETUSER logs in with its password, Restart comes back on
// the same address empty and without that user, a taken port is reported
// as such, and Stop leaves no process and no directory.
func TestRedis(t *testing.T) {
	r := started(t, "Redis", StartRedis)
	ctx := context.Background()
	opts, err := redis.ParseURL(r.AdminURL)
	if err != nil || opts.Addr != r.Addr || opts.Username != "default" || opts.Password != r.Password ||
		!strings.HasPrefix(r.Addr, "127.0.0.1:") || len(r.Password) < 32 {
		t.Fatalf("AdminURL %v: Addr %s user %q (%v)", opts, r.Addr, opts.Username, err)
	}
	admin := redis.NewClient(opts)
	t.Cleanup(func() { admin.Close() })
	info, err := admin.Info(ctx, "server").Result()
	if err != nil || !strings.Contains(info, "redis_version:7.") {
		t.Fatalf("INFO server: %v\n%s", err, info)
	}
	for k, want := range map[string]string{"save": "", "appendonly": "no", "databases": "16", "bind": "127.0.0.1", "protected-mode": "yes"} {
		got, err := admin.ConfigGet(ctx, k).Result()
		if err != nil || got[k] != want {
			t.Errorf("CONFIG GET %s = %q (%v), want %q", k, got[k], err, want)
		}
	}
	wrong := redis.NewClient(&redis.Options{Addr: r.Addr, Password: "wrong", MaxRetries: -1})
	if err := wrong.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("a wrong password: %v, want WRONGPASS", err)
	}
	wrong.Close()
	if out, err := os.ReadFile(filepath.Join(r.Dir, "redis.log")); err != nil || strings.Contains(string(out), r.Password) {
		t.Errorf("redis.log: %v (or it holds the password)", err)
	}

	// A user the admin makes logs in with its password.
	if err := admin.Do(ctx, "ACL", "SETUSER", "helios_test", "on", ">test-pw-1", "~*", "+@read").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	user := func(pw string) error {
		c := redis.NewClient(&redis.Options{Addr: r.Addr, Username: "helios_test", Password: pw, MaxRetries: -1})
		defer c.Close()
		return c.Get(ctx, "nothing").Err()
	}
	if err := user("test-pw-1"); err != redis.Nil {
		t.Errorf("the new user: %v", err)
	}
	if err := user("test-pw-2"); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("the new user with a wrong password: %v", err)
	}
	if err := admin.Set(ctx, "kept", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}

	// Restart: the same address, a new process, open connections broken,
	// no data and no ACL user kept.
	addr, oldPID := r.Addr, r.PID()
	if err := r.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if r.Addr != addr || r.PID() == oldPID || running(oldPID) {
		t.Errorf("after Restart: Addr %s (was %s), PID %d (was %d, running %v)", r.Addr, addr, r.PID(), oldPID, running(oldPID))
	}
	if n, err := admin.Exists(ctx, "kept").Result(); err != nil || n != 0 {
		t.Errorf("after Restart, EXISTS kept: %d %v (the pool reconnects; the data is gone)", n, err)
	}
	if err := user("test-pw-1"); err == nil {
		t.Error("the ACL user survived a restart")
	}

	// A port another process holds is reported as taken.
	if err := startOnTakenPort(t, &r.server, r.Addr, r.start); !errors.Is(err, errAddrInUse) || strings.Contains(err.Error(), r.Password) {
		t.Errorf("start on a taken port: %v, want errAddrInUse and no password", err)
	}
	if err := r.Restart(); err != nil {
		t.Fatalf("Restart once the port is free: %v", err)
	}
	checkStop(t, r.PID(), 0, r.Dir, r.Stop)
	if err := r.Restart(); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}
