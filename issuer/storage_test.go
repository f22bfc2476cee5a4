package issuer

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"golang.org/x/sys/unix"

	"github.com/heliosdb/auth/internal/testfs"
)

// TestSpaceNeeded: ordinary commands need the whole reserve, revocations a
// quarter of it; no reserve or an unreadable free space admits everything.
func TestSpaceNeeded(t *testing.T) {
	s := &Store{reserve: 4 << 20}
	for _, c := range []struct {
		op   Op
		free uint64
		ok   bool
	}{
		{OpCreateToken, 4 << 20, true},
		{OpCreateToken, 4<<20 - 1, false},
		{OpSignup, 2 << 20, false},
		{OpTouch, 0, false},
		{OpRevokeToken, 2 << 20, true},
		{OpRevokeToken, 1 << 20, true},
		{OpRevokeToken, 1<<20 - 1, false},
		{OpLogoutAll, 1 << 20, true},
		{OpRetireKey, 1 << 20, true},
		{OpKeyring, 1 << 20, true},
		{OpCompact, 1 << 20, false},
	} {
		err := s.admit(c.op, c.free, true)
		if (err == nil) != c.ok {
			t.Errorf("%s with %d bytes free: admitted %v, want %v", c.op, c.free, err == nil, c.ok)
		}
		if err != nil && (err.Free != c.free || err.Need != spaceNeeded(c.op, s.reserve)) {
			t.Errorf("%s: %+v", c.op, err)
		}
	}
	if err := s.admit(OpCreateToken, 0, false); err != nil {
		t.Errorf("unknown free space refused a write: %v", err)
	}
	if err := (&Store{}).admit(OpCreateToken, 0, true); err != nil {
		t.Errorf("no reserve refused a write: %v", err)
	}
}

// TestStorageErrorAnswers: the REST answer of each storage error, through
// errors.As on a wrapped error as Service.fail sees it.
func TestStorageErrorAnswers(t *testing.T) {
	var full error = &StorageError{Free: 3 << 20, Need: 4 << 20}
	wrapped := errors.Join(errors.New("context"), full)
	var ae *APIError
	if !errors.As(wrapped, &ae) || ae.Status != http.StatusInsufficientStorage || ae.Code != CodeStorageFull ||
		!strings.Contains(ae.Message, "3.0 MiB free") || !strings.Contains(ae.Message, "4.0 MiB needed") {
		t.Fatalf("full: %+v", ae)
	}
	if !errors.Is(wrapped, ErrStorageFull) || errors.Is(wrapped, ErrStorageFailed) {
		t.Fatal("errors.Is on a full store's error")
	}
	failed := &StorageError{Failed: true, Cause: "write /data/issuer/000002.log: no space left on device"}
	if !errors.As(failed, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Code != CodeStorageFailed ||
		strings.Contains(ae.Message, "/data") {
		t.Fatalf("failed: %+v", ae)
	}
	if !errors.Is(failed, ErrStorageFailed) || errors.Is(failed, ErrStorageFull) {
		t.Fatal("errors.Is on a failed store's error")
	}
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 8 << 20: "8.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestStoreRefusesWritesBelowReserve fills a real 4 MiB file system under
// a store keeping 1 MiB: writes are refused with how much is free and
// needed, revocations go on until a quarter of the reserve, reads keep
// working, and writes resume once space is freed, without reopening.
func TestStoreRefusesWritesBelowReserve(t *testing.T) {
	mnt := testfs.MountTmpfs(t, "4m")
	s, err := OpenWith(filepath.Join(mnt, "issuer"), StoreOptions{Reserve: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acc := signup(t, s, "full@example.com")
	kept, victim, last := newRecord(acc.ID), newRecord(acc.ID), newRecord(acc.ID)
	for _, r := range []*TokenRecord{kept, victim, last} {
		if _, err := s.Submit(&Command{Op: OpCreateToken, Token: r}); err != nil {
			t.Fatal(err)
		}
	}

	free := testfs.FillTo(t, mnt, 512<<10)
	t.Logf("filled: %d bytes free", free)
	seq := s.LastSeq()
	_, err = s.Submit(&Command{Op: OpCreateToken, Token: newRecord(acc.ID)})
	var se *StorageError
	if !errors.Is(err, ErrStorageFull) || !errors.As(err, &se) || se.Need != 1<<20 || se.Free >= se.Need {
		t.Fatalf("create token with %d bytes free: %v (%+v)", free, err, se)
	}
	if _, err := s.Submit(&Command{Op: OpSignup, Email: "late@example.com", Hash: "h"}); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("signup below the reserve: %v", err)
	}
	if s.LastSeq() != seq {
		t.Fatalf("a refused command moved the watermark %d → %d", seq, s.LastSeq())
	}
	if _, err := s.Submit(&Command{Op: OpRevokeToken, At: time.Now().Unix(), Account: acc.ID, TokenID: victim.ID}); err != nil {
		t.Fatalf("revocation inside the reserve: %v", err)
	}
	if s.Revocations().Check(victim.ID, acc.ID, time.Now().Unix(), 1) == 0 {
		t.Fatal("the revocation did not reach the in-memory view")
	}

	free = testfs.FillTo(t, mnt, 0)
	_, err = s.Submit(&Command{Op: OpRevokeToken, At: time.Now().Unix(), Account: acc.ID, TokenID: last.ID})
	if !errors.As(err, &se) || se.Need != 256<<10 {
		t.Fatalf("revocation with %d bytes free: %v", free, err)
	}
	var got TokenRecord
	if err := s.get(tokenKey(acc.ID, kept.ID), &got); err != nil || got.ID != kept.ID {
		t.Fatalf("read on a full disk: %v", err)
	}

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(&Command{Op: OpCreateToken, Token: newRecord(acc.ID)}); err != nil {
		t.Fatalf("create token once space is back: %v", err)
	}
	if _, err := s.Submit(&Command{Op: OpRevokeToken, At: time.Now().Unix(), Account: acc.ID, TokenID: last.ID}); err != nil {
		t.Fatalf("revoke once space is back: %v", err)
	}
}

// TestFatalWriteErrorFailsClosed makes every WAL write fail as a full disk
// does (ENOSPC), with no reserve to catch it first: Pebble reports a fatal
// commit error, and the store refuses that and every later write with
// STORAGE_FAILED instead of panicking, keeps serving reads and its
// revocation view, and closes without touching Pebble again. (Before,
// pebbleLogger.Fatalf panicked on the writer goroutine and ended the
// process.)
func TestFatalWriteErrorFailsClosed(t *testing.T) {
	var enospc atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if enospc.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite && strings.HasSuffix(op.Path, ".log") {
			return syscall.ENOSPC
		}
		return nil
	})
	s, err := OpenWith(t.TempDir(), StoreOptions{fs: errorfs.Wrap(vfs.Default, inj)})
	if err != nil {
		t.Fatal(err)
	}
	acc := signup(t, s, "fatal@example.com")
	kept, victim := keptAndRevoked(t, s, acc.ID)
	seq := s.LastSeq()

	enospc.Store(true)
	_, err = s.Submit(&Command{Op: OpCreateToken, Token: newRecord(acc.ID)})
	var ae *APIError
	if !errors.Is(err, ErrStorageFailed) || !errors.As(err, &ae) || ae.Code != CodeStorageFailed {
		t.Fatalf("write on a failing disk: %v", err)
	}
	if s.LastSeq() != seq {
		t.Fatalf("a failed write moved the watermark %d → %d", seq, s.LastSeq())
	}
	enospc.Store(false)
	started := time.Now()
	if _, err := s.Submit(&Command{Op: OpSignup, Email: "after@example.com", Hash: "h"}); !errors.Is(err, ErrStorageFailed) {
		t.Fatalf("a write after the failure: %v", err)
	}
	if time.Since(started) > time.Second {
		t.Fatalf("a refused write took %s", time.Since(started))
	}
	var got TokenRecord
	if err := s.get(tokenKey(acc.ID, kept.ID), &got); err != nil || got.ID != kept.ID {
		t.Fatalf("read after the failure: %v", err)
	}
	if s.Revocations().Check(victim.ID, acc.ID, time.Now().Unix(), 1) == 0 || s.Revocations().Check(kept.ID, acc.ID, time.Now().Unix(), 1) != 0 {
		t.Fatal("the revocation view changed after the failure")
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if !errors.Is(err, ErrStorageFailed) {
			t.Fatalf("Close after the failure: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs after a fatal write error")
	}
}

// TestStoreFileModes: under a permissive umask, a store in a 0755
// directory is made 0700 with every file 0600, and a store left 0755/0644
// by an older version is tightened when it is opened.
func TestStoreFileModes(t *testing.T) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	dir := filepath.Join(t.TempDir(), "issuer")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	signup(t, s, "modes@example.com")
	if err := s.Close(); err != nil { // the flush writes an sstable too
		t.Fatal(err)
	}
	checkPrivate := func(when string) {
		t.Helper()
		files := 0
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			} else {
				files++
			}
			if info.Mode().Perm() != want {
				t.Errorf("%s: %s is %04o, want %04o", when, path, info.Mode().Perm(), want)
			}
			return nil
		})
		if err != nil || files < 5 {
			t.Fatalf("%s: walked %d files: %v", when, files, err)
		}
	}
	checkPrivate("new store")

	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.Chmod(filepath.Join(dir, e.Name()), 0o644)
	}
	_ = os.Chmod(dir, 0o755)
	s = openStore(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkPrivate("reopened store")
}

// TestStoreOpensReadOnlyOnFullDisk: a store opened on a full file system
// (a restart while the disk is full) opens read-only, serves reads and
// its revocation view, refuses writes with STORAGE_FULL, and reopens for
// writing by itself once space is freed.
func TestStoreOpensReadOnlyOnFullDisk(t *testing.T) {
	mnt := testfs.MountTmpfs(t, "4m")
	dir := filepath.Join(mnt, "issuer")
	s, err := OpenWith(dir, StoreOptions{Reserve: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	acc := signup(t, s, "restart@example.com")
	kept, victim := keptAndRevoked(t, s, acc.ID)
	seq := s.LastSeq()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	testfs.FillTo(t, mnt, 0)
	s, err = OpenWith(dir, StoreOptions{Reserve: 1 << 20})
	if err != nil {
		t.Fatalf("open on a full disk: %v", err)
	}
	defer s.Close()
	if s.LastSeq() != seq {
		t.Fatalf("watermark %d after reopening, want %d", s.LastSeq(), seq)
	}
	var got TokenRecord
	if err := s.get(tokenKey(acc.ID, kept.ID), &got); err != nil || got.ID != kept.ID {
		t.Fatalf("read from the read-only store: %v", err)
	}
	if s.Revocations().Check(victim.ID, acc.ID, time.Now().Unix(), 1) == 0 {
		t.Fatal("the read-only store lost a revocation")
	}
	_, err = s.Submit(&Command{Op: OpRevokeToken, At: time.Now().Unix(), Account: acc.ID, TokenID: kept.ID})
	var se *StorageError
	if !errors.As(err, &se) || se.Failed || se.Need != 1<<20 {
		t.Fatalf("write to the read-only store: %v", err)
	}

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	fresh := newRecord(acc.ID)
	if _, err := s.Submit(&Command{Op: OpCreateToken, Token: fresh}); err != nil {
		t.Fatalf("write once space is back: %v", err)
	}
	if err := s.get(tokenKey(acc.ID, fresh.ID), &got); err != nil || got.ID != fresh.ID {
		t.Fatalf("read after reopening for writing: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	if err := s.get(tokenKey(acc.ID, fresh.ID), &got); err != nil {
		t.Fatalf("the write after reopening is not durable: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// keptAndRevoked creates two token records for account and revokes the
// second: what a store must still hold, in that state, after a failure.
func keptAndRevoked(t *testing.T, s *Store, account uint64) (kept, victim *TokenRecord) {
	t.Helper()
	kept, victim = newRecord(account), newRecord(account)
	for _, r := range []*TokenRecord{kept, victim} {
		if _, err := s.Submit(&Command{Op: OpCreateToken, Token: r}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Submit(&Command{Op: OpRevokeToken, At: time.Now().Unix(), Account: account, TokenID: victim.ID}); err != nil {
		t.Fatal(err)
	}
	return kept, victim
}
