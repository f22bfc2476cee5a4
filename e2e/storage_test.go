package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/heliosdb/auth/internal/testfs"
)

// requireAlive fails the test when the daemon has exited.
func requireAlive(t *testing.T, d *daemon, pid int) {
	t.Helper()
	select {
	case <-d.Exited():
		t.Fatalf("heliosd exited:\n%s", d.Logs())
	default:
	}
	if d.PID() != pid {
		t.Fatalf("heliosd was restarted (pid %d, was %d)", d.PID(), pid)
	}
}

// apiErr decodes the seed's error body.
func apiErr(t *testing.T, body []byte) (code, message string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error.Code, e.Error.Message
}

// requireRefused checks a 507 STORAGE_FULL (or 503 STORAGE_FAILED) answer
// whose message says what it must.
func requireRefused(t *testing.T, what string, status int, body []byte, wantStatus int, wantCode string, wantIn ...string) {
	t.Helper()
	code, msg := apiErr(t, body)
	if status != wantStatus || code != wantCode {
		t.Fatalf("%s: %d %s, want %d %s", what, status, body, wantStatus, wantCode)
	}
	for _, w := range wantIn {
		if !strings.Contains(msg, w) {
			t.Fatalf("%s: message %q does not say %q", what, msg, w)
		}
	}
}

// servedEverywhere checks that tok authenticates a new connection on every
// protocol.
func servedEverywhere(t *testing.T, d *daemon, tok string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if status, out := d.Do(t, "GET", "/v1/auth/tokens", tok, nil); status != http.StatusOK {
		t.Fatalf("REST with an issued token: %d %s", status, out)
	}
	conn, err := pgx.Connect(ctx, pgURL(d.PG, tok, "require"))
	if err != nil {
		t.Fatalf("PostgreSQL with an issued token: %v", err)
	}
	var one int
	err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	conn.Close(ctx)
	if err != nil || one != 1 {
		t.Fatalf("PostgreSQL SELECT 1: %d %v", one, err)
	}
	rc := redisClient(d, tok, false)
	err = rc.Ping(ctx).Err()
	rc.Close()
	if err != nil {
		t.Fatalf("Redis with an issued token: %v", err)
	}
	if err := mysqlDB(t, d, tok, "skip-verify").PingContext(ctx); err != nil {
		t.Fatalf("MySQL with an issued token: %v", err)
	}
	if err := mongoConnect(t, mongoURI(d, tok, "")).Ping(ctx, nil); err != nil {
		t.Fatalf("MongoDB with an issued token: %v", err)
	}
}

// redisRefuses checks that Redis refuses tok (a revoked token).
func redisRefuses(t *testing.T, d *daemon, tok string) {
	t.Helper()
	rc := redisClient(d, tok, false)
	defer rc.Close()
	if err := rc.Ping(context.Background()).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("Redis with a revoked token: %v", err)
	}
}

// TestStorageFullRefusesWritesAndKeepsServing fills the 8 MiB file system
// of a real heliosd that keeps 2 MiB free. Below the reserve every write is
// refused with 507 STORAGE_FULL saying how much is free and needed (REST
// and the helios CLI), revocations still go through until a quarter of
// the reserve is left, tokens already issued keep working on every
// protocol, and the daemon stays up; once space is freed, writes work
// again without a restart. Before the reserve, heliosd acknowledged
// writes until Pebble's WAL hit ENOSPC and then panicked ("pebble: fatal
// commit error"), taking every listener down.
func TestStorageFullRefusesWritesAndKeepsServing(t *testing.T) {
	mnt, d, email, bearer := smallDiskDaemon(t, "2MiB", "full")
	pid := d.PID()
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "app"})
	victim, victimID := d.CreateToken(t, bearer, map[string]any{"name": "victim"})
	_, lastID := d.CreateToken(t, bearer, map[string]any{"name": "last"})
	servedEverywhere(t, d, tok)

	// Below the reserve, above a quarter of it.
	free := testfs.FillTo(t, mnt, 1<<20)
	t.Logf("file system filled: %d bytes free", free)
	for i := range 20 {
		status, body := d.Do(t, "POST", "/v1/auth/tokens", bearer, map[string]any{"name": fmt.Sprintf("full-%d", i)})
		requireRefused(t, "create token", status, body, http.StatusInsufficientStorage, "STORAGE_FULL", "free", "2.0 MiB needed")
		requireAlive(t, d, pid)
	}
	status, body := d.Do(t, "POST", "/v1/auth/login", "", map[string]string{"email": email, "password": diskPassword})
	requireRefused(t, "login", status, body, http.StatusInsufficientStorage, "STORAGE_FULL", "free", "needed")
	status, body = d.Do(t, "POST", "/v1/auth/signup", "", map[string]string{"email": "late-" + email, "password": diskPassword})
	requireRefused(t, "signup", status, body, http.StatusInsufficientStorage, "STORAGE_FULL")
	errs := newCLI(t, d).fails("STORAGE_FULL", "", []string{"HELIOS_TOKEN=" + bearer}, "token", "create", "--name", "cli-full")
	if !strings.Contains(errs, "free on the data directory's file system") || !strings.Contains(errs, "needed") ||
		!strings.Contains(errs, "Hint: the server's disk is full") {
		t.Fatalf("helios token create on a full disk said:\n%s", errs)
	}
	servedEverywhere(t, d, tok)
	d.Revoke(t, bearer, victimID) // revocations may use the reserve
	redisRefuses(t, d, victim)
	requireAlive(t, d, pid)

	// Completely full: even revocations wait for space.
	free = testfs.FillTo(t, mnt, 0)
	t.Logf("file system full: %d bytes free", free)
	for i := range 20 {
		status, body := d.Do(t, "POST", "/v1/auth/tokens", bearer, map[string]any{"name": fmt.Sprintf("full-%d", i)})
		requireRefused(t, "create token on a full disk", status, body, http.StatusInsufficientStorage, "STORAGE_FULL")
	}
	status, body = d.Do(t, "DELETE", "/v1/auth/tokens/"+lastID, bearer, nil)
	requireRefused(t, "revoke on a full disk", status, body, http.StatusInsufficientStorage, "STORAGE_FULL", "512.0 KiB needed")
	servedEverywhere(t, d, tok)
	requireAlive(t, d, pid)

	// Space comes back: writes work again in the same process.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	after, _ := d.CreateToken(t, bearer, map[string]any{"name": "after"})
	servedEverywhere(t, d, after)
	d.Login(t, email, diskPassword)
	d.Revoke(t, bearer, lastID)
	requireAlive(t, d, pid)
	waitLog(t, d, "issuer storage is below its reserve")
	waitLog(t, d, "issuer storage has space again")
}

// waitLog waits until the daemon's log holds want (its output reaches the
// test through a pipe, possibly after the answer that followed it).
func waitLog(t *testing.T, d *daemon, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(d.Logs(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log has no %q line", want)
		}
	}
}

// TestStorageFullAtStartServesReadOnly restarts heliosd after a crash on a
// completely full file system: it opens the issuer store read-only (its
// WAL replayed in memory), serves every protocol with the tokens already
// issued and keeps revoked ones revoked, refuses writes with 507
// STORAGE_FULL, and reopens the store for writing by itself once space is
// freed. Before, Pebble's flush of the replayed WAL could not write its
// MANIFEST and the start panicked: no listener came up at all.
func TestStorageFullAtStartServesReadOnly(t *testing.T) {
	mnt, d, email, bearer := smallDiskDaemon(t, "2MiB", "restart")
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "app"})
	victim, victimID := d.CreateToken(t, bearer, map[string]any{"name": "victim"})
	d.Revoke(t, bearer, victimID)
	d.Kill() // a crash: the last writes are only in the WAL

	free := testfs.FillTo(t, mnt, 0)
	t.Logf("file system full: %d bytes free", free)
	d.StartAgain(t)
	pid := d.PID()
	waitLog(t, d, "the store is open read-only")
	servedEverywhere(t, d, tok)
	redisRefuses(t, d, victim)
	status, body := d.Do(t, "POST", "/v1/auth/tokens", bearer, map[string]any{"name": "read-only"})
	requireRefused(t, "create token on the read-only store", status, body, http.StatusInsufficientStorage, "STORAGE_FULL", "2.0 MiB needed")
	status, body = d.Do(t, "POST", "/v1/auth/login", "", map[string]string{"email": email, "password": diskPassword})
	requireRefused(t, "login on the read-only store", status, body, http.StatusInsufficientStorage, "STORAGE_FULL")
	requireAlive(t, d, pid)

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	after, _ := d.CreateToken(t, bearer, map[string]any{"name": "after"})
	servedEverywhere(t, d, after)
	d.Login(t, email, diskPassword)
	redisRefuses(t, d, victim)
	requireAlive(t, d, pid)
	waitLog(t, d, "issuer store reopened for writing")
}

// TestStorageFatalWriteErrorKeepsServing runs heliosd with no reserve on a
// full 8 MiB file system, so Pebble itself hits ENOSPC and reports a fatal
// commit error: the daemon fails its write path closed (503
// STORAGE_FAILED, also after space returns) and keeps every protocol
// serving issued tokens; after a restart, every acknowledged token is
// there and writes work again. Before, the fatal error panicked the
// process.
func TestStorageFatalWriteErrorKeepsServing(t *testing.T) {
	mnt, d, email, bearer := smallDiskDaemon(t, "0", "fatal")
	pid := d.PID()
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "app"})
	servedEverywhere(t, d, tok)

	testfs.FillTo(t, mnt, 0)
	acked := map[string]string{} // id → token
	failed := false
	for i := 0; i < 500 && !failed; i++ {
		status, body := d.Do(t, "POST", "/v1/auth/tokens", bearer, map[string]any{"name": fmt.Sprintf("w-%d", i)})
		switch status {
		case http.StatusCreated:
			var r struct{ ID, Token string }
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			acked[r.ID] = r.Token
		default:
			requireRefused(t, "create token as the WAL hits ENOSPC", status, body, http.StatusServiceUnavailable, "STORAGE_FAILED", "restarted")
			failed = true
		}
		requireAlive(t, d, pid)
	}
	if !failed {
		t.Fatal("500 tokens fit on a full 8 MiB file system")
	}
	t.Logf("%d tokens acknowledged before the WAL write failed", len(acked))
	waitLog(t, d, "issuer storage failed a write")
	servedEverywhere(t, d, tok)
	status, body := d.Do(t, "POST", "/v1/auth/login", "", map[string]string{"email": email, "password": diskPassword})
	requireRefused(t, "login after the failure", status, body, http.StatusServiceUnavailable, "STORAGE_FAILED")

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	status, body = d.Do(t, "POST", "/v1/auth/tokens", bearer, map[string]any{"name": "too-soon"})
	requireRefused(t, "create token before the restart", status, body, http.StatusServiceUnavailable, "STORAGE_FAILED")
	servedEverywhere(t, d, tok)
	requireAlive(t, d, pid)

	d.Restart(t)
	var list struct {
		Tokens []struct{ ID string } `json:"tokens"`
	}
	d.MustJSON(t, http.StatusOK, "GET", "/v1/auth/tokens", bearer, nil, &list)
	listed := map[string]bool{}
	for _, x := range list.Tokens {
		listed[x.ID] = true
	}
	for id, tk := range acked {
		if !listed[id] {
			t.Errorf("acknowledged token %s is gone after the restart", id)
		}
		rc := redisClient(d, tk, false)
		if err := rc.Ping(context.Background()).Err(); err != nil {
			t.Errorf("acknowledged token %s on Redis after the restart: %v", id, err)
		}
		rc.Close()
	}
	after, _ := d.CreateToken(t, bearer, map[string]any{"name": "after-restart"})
	servedEverywhere(t, d, after)
}

// TestDataDirModes pre-creates the data directory 0755 (as a volume mount
// or mkdir would) under a 022 umask: heliosd warns that it is open, leaves
// its mode to its owner, and creates every directory in it 0700 and every
// file 0600 (before, issuer/ was 0755 and its Pebble files, with emails
// and argon2id hashes, 0644).
func TestDataDirModes(t *testing.T) {
	old := unix.Umask(0o022) // heliosd inherits it: the modes below are its own doing
	defer unix.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, withDataDir(dir))
	const pw = "correct-horse-battery-staple"
	email := fmt.Sprintf("modes-%d@example.com", time.Now().UnixNano())
	d.Signup(t, email, pw)
	bearer := d.Login(t, email, pw)
	tok, _ := d.CreateToken(t, bearer, map[string]any{"name": "modes"})
	servedEverywhere(t, d, tok)
	d.Stop() // the store's flush at close writes an sstable too; the log is complete

	files := 0
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		perm := info.Mode().Perm()
		switch {
		case path == dir:
			if perm != 0o755 {
				t.Errorf("heliosd changed the mode of the operator's data directory to %04o", perm)
			}
		case e.IsDir():
			if perm != 0o700 {
				t.Errorf("directory %s is %04o, want 0700", path, perm)
			}
		default:
			files++
			if perm != 0o600 {
				t.Errorf("file %s is %04o, want 0600", path, perm)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 8 {
		t.Fatalf("only %d files in the data directory", files)
	}
	logs := d.Logs()
	var warning string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "the data directory is accessible by group or others") {
			warning = line
		}
	}
	if !strings.Contains(warning, "level=WARN") || !strings.Contains(warning, dir) || !strings.Contains(warning, "mode=0755") {
		t.Fatalf("no warning about the open data directory: %q", warning)
	}
	for _, secret := range []string{pw, bearer, tok} {
		if strings.Contains(logs, secret) {
			t.Fatal("the log holds a password or token")
		}
	}
}

// diskPassword is the password of the users the storage tests sign up.
const diskPassword = "correct-horse-battery-staple"

// smallDiskDaemon starts heliosd with its data directory on a fresh 8 MiB
// tmpfs and the given --storage-reserve, and signs up a user (its email
// starting with who); it returns the mount point, the daemon, the user's
// email and session token.
func smallDiskDaemon(t *testing.T, reserve, who string) (mnt string, d *daemon, email, bearer string) {
	t.Helper()
	mnt = testfs.MountTmpfs(t, "8m")
	d = startDaemon(t, withDataDir(filepath.Join(mnt, "data")), withArgs("--storage-reserve", reserve))
	email = fmt.Sprintf("%s-%d@example.com", who, time.Now().UnixNano())
	d.Signup(t, email, diskPassword)
	return mnt, d, email, d.Login(t, email, diskPassword)
}
