package issuer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// DefaultReserve is the free space, in bytes, the store keeps on its file
// system by default (see StoreOptions.Reserve).
const DefaultReserve = 64 << 20

// StoreOptions configure OpenWith. The zero value keeps no reserve.
type StoreOptions struct {
	// Logger receives the store's and Pebble's messages (nil: discarded).
	Logger *slog.Logger
	// Reserve is the free space (bytes) kept on the store's file system:
	// before each group commit the writer reads the free space (statfs) and,
	// while less than Reserve is free, refuses commands with STORAGE_FULL.
	// Revocations (revoke, logout, logout-all, key retirement
	// and keyring changes) may go on until a quarter of it is left, so a
	// leaked token can still be revoked when the disk is nearly full; the
	// last quarter is left to Pebble's own flushes and MANIFEST. 0 keeps no
	// reserve (a full disk then surfaces as a Pebble write error, which
	// fails the write path closed; see pebbleLogger.Fatalf).
	Reserve int64
	// Replicated opens the store as one replica of a raft cluster: Submit
	// goes through the Replicator given to SetReplicator, commands are
	// applied as they commit (ApplyReplicated), and the default database is
	// left to the leader (EnsureDefaultDatabase).
	Replicated bool

	// fs replaces the operating system's file system (tests inject errors).
	fs vfs.FS
}

// EnsureDefaults gives every unset field of o its default and returns o: a
// Logger that discards, and the operating system's file system. Reserve
// stays as it is: 0 keeps none (heliosd's default is DefaultReserve).
func (o *StoreOptions) EnsureDefaults() *StoreOptions {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.fs == nil {
		o.fs = vfs.Default
	}
	return o
}

// Error codes of storage failures (beyond the ones in errors.go).
const (
	// CodeStorageFull is a write refused because the store's file system is
	// below its free-space reserve: 507 Insufficient Storage. Nothing was
	// changed, and the write succeeds once space is freed (no restart).
	CodeStorageFull = "STORAGE_FULL"
	// CodeStorageFailed is a write refused because Pebble reported a fatal
	// write error earlier: 503. Writes stay refused until heliosd restarts.
	CodeStorageFailed = "STORAGE_FAILED"
)

// Storage errors, for errors.Is on what Store.Submit returns.
var (
	ErrStorageFull   = errors.New("issuer storage is below its free-space reserve")
	ErrStorageFailed = errors.New("issuer storage failed a write")
)

// StorageError is a command the store did not write because of its
// storage: the file system is below the reserve (Failed false: Free and
// Need say how many bytes are free and how many the command needs), or
// Pebble reported a fatal write error (Failed true). errors.Is matches
// ErrStorageFull or ErrStorageFailed, and errors.As yields the *APIError
// the REST handlers answer with.
type StorageError struct {
	Free, Need uint64
	Failed     bool
	// Cause is Pebble's message (Failed only). It may name files of the
	// data directory: it is logged, never sent to clients.
	Cause string
}

// Error says what happened.
func (e *StorageError) Error() string {
	if e.Failed {
		return "issuer storage failed a write: " + e.Cause
	}
	return fmt.Sprintf("issuer storage is full: %s free, %s needed", formatBytes(e.Free), formatBytes(e.Need))
}

// Is matches ErrStorageFailed or ErrStorageFull.
func (e *StorageError) Is(target error) bool {
	if e.Failed {
		return target == ErrStorageFailed
	}
	return target == ErrStorageFull
}

// As fills an **APIError with the answer the REST API gives.
func (e *StorageError) As(target any) bool {
	p, ok := target.(**APIError)
	if ok {
		*p = e.APIError()
	}
	return ok
}

// APIError is the REST answer: 507 STORAGE_FULL with the free and needed
// space, or 503 STORAGE_FAILED. Either says that issued tokens keep working.
func (e *StorageError) APIError() *APIError {
	if e.Failed {
		return &APIError{Status: http.StatusServiceUnavailable, Code: CodeStorageFailed,
			Message: "the issuer's storage failed a write (disk full or I/O error): writes are refused until heliosd " +
				"is restarted, and this request may not have been saved; tokens already issued keep working on every protocol"}
	}
	return &APIError{Status: http.StatusInsufficientStorage, Code: CodeStorageFull,
		Message: fmt.Sprintf("the issuer's storage is full: %s free on the data directory's file system, %s needed "+
			"(heliosd keeps a reserve free for revocations and its database's upkeep); nothing was changed, tokens "+
			"already issued keep working, and this succeeds again once space is freed", formatBytes(e.Free), formatBytes(e.Need))}
}

// formatBytes writes n in binary units: 512 B, 1.5 KiB, 2.0 MiB.
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// revocationOp reports whether op takes access away (or follows a key
// change): such commands may use three quarters of the reserve.
func revocationOp(op Op) bool {
	switch op {
	case OpRevokeToken, OpLogoutAll, OpRetireKey, OpKeyring:
		return true
	}
	return false
}

// spaceNeeded is the free space a command of op needs under reserve.
func spaceNeeded(op Op, reserve uint64) uint64 {
	if revocationOp(op) {
		return reserve / 4
	}
	return reserve
}

// admit refuses a command of op when free bytes (measured: false when the
// free space is unknown) are below what it needs.
func (s *Store) admit(op Op, free uint64, measured bool) *StorageError {
	if !measured || s.reserve == 0 {
		return nil
	}
	if need := spaceNeeded(op, s.reserve); free < need {
		metricStorageRefused.Inc()
		return &StorageError{Free: free, Need: need}
	}
	return nil
}

// measureSpace reads the free space before a group commit (writer only)
// and logs when the store crosses its reserve either way. measured is
// false when there is no reserve or the free space cannot be read (the
// write is then let through: Pebble's own errors still fail it safely).
func (s *Store) measureSpace() (free uint64, measured bool) {
	if s.reserve == 0 {
		return 0, false
	}
	free, err := freeBytes(s.dir)
	if err != nil {
		if !s.statfsFailed {
			s.log.Warn("cannot read the issuer store's free space: the reserve is not enforced until it can", "err", err)
			s.statfsFailed = true
		}
		return 0, false
	}
	s.statfsFailed = false
	switch {
	case free < s.reserve && !s.full:
		s.full = true
		s.log.Warn("issuer storage is below its reserve: refusing writes (STORAGE_FULL) except revocations; token verification continues",
			"free", formatBytes(free), "reserve", formatBytes(s.reserve))
	case free >= s.reserve && s.full:
		s.full = false
		s.log.Info("issuer storage has space again: accepting writes", "free", formatBytes(free), "reserve", formatBytes(s.reserve))
	}
	return free, true
}

// failure returns the fatal storage error, or nil while the store writes.
func (s *Store) failure() *StorageError { return s.failed.Load() }

// fail records a fatal Pebble error: from now on every command is refused
// with STORAGE_FAILED, Submit stops waiting for the writer, and Close no
// longer calls into Pebble. Reads and the in-memory views keep working.
func (s *Store) fail(cause string) *StorageError {
	s.failOnce.Do(func() {
		s.failed.Store(&StorageError{Failed: true, Cause: cause})
		close(s.failedCh)
		s.log.Error("issuer storage failed a write: every write is refused until heliosd restarts (it recovers from the write-ahead log); token verification continues",
			"err", cause)
	})
	return s.failed.Load()
}

// pebbleFatal is the panic value with which Fatalf unwinds to a function of
// this package that recovers it (see recovers).
type pebbleFatal string

// recovers holds the functions that recover a pebbleFatal raised beneath
// them: the writer's group commit, opening and closing the database.
var recovers = map[string]bool{}

func init() {
	for _, fn := range []any{(*Store).writeGroup, openPebble, (*Store).closePebble} {
		recovers[runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()] = true
	}
}

// beneathRecover reports whether the calling goroutine runs beneath one of
// the functions in recovers.
func beneathRecover() bool {
	var pcs [128]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		if recovers[f.Function] {
			return true
		}
		if !more {
			return false
		}
	}
}

// pebbleLogger routes Pebble's messages to slog and turns its fatal errors
// into a store that refuses writes instead of a crashed process.
type pebbleLogger struct {
	l *slog.Logger
	s *Store
}

// Infof logs Pebble information at debug level.
func (p *pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

// Errorf logs a Pebble error.
func (p *pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble", "msg", fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble on an error it cannot continue from — chiefly
// a failed WAL write or sync ("fatal commit error", e.g. ENOSPC) and a
// failed MANIFEST write. Pebble expects it not to return: after
// d.commit.Commit fails, DB.applyInternal logs Fatalf and then returns nil,
// so a Fatalf that returns would have Batch.Commit report success for a
// write that is not durable, and after a MANIFEST failure it would go on
// with half-applied version state. So Fatalf never returns into Pebble:
//
//   - it fails the store closed (every later write is refused with
//     STORAGE_FAILED; Pebble is never written again, since its WAL writer
//     keeps the error and its commit pipeline may hold a lock);
//   - beneath the writer's group commit (or OpenWith/Close), which is where a
//     commit error is reported, it panics with pebbleFatal, and that
//     function recovers: the group's callers get STORAGE_FAILED and the
//     writer keeps answering;
//   - on any other goroutine (Pebble's background flushes and compactions)
//     it parks the goroutine for good, so nothing continues from Pebble's
//     broken state; panicking there would end the process.
//
// The process, every listener and token verification (which reads only
// the in-memory revocation view) keep running; a restart recovers the
// store from its WAL.
func (p *pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.s.fail(msg)
	if beneathRecover() {
		panic(pebbleFatal(msg))
	}
	select {}
}

// privateFS is the operating system's file system for Pebble with every
// file it creates mode 0600 and every directory 0700, whatever the umask
// (the store holds emails and password hashes).
type privateFS struct{ vfs.FS }

// Create creates name with mode 0600.
func (p privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return private(name)(p.FS.Create(name, category))
}

// OpenReadWrite opens (or creates) name with mode 0600.
func (p privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return private(name)(p.FS.OpenReadWrite(name, category, opts...))
}

// ReuseForWrite renames a recycled file to newname with mode 0600.
func (p privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return private(newname)(p.FS.ReuseForWrite(oldname, newname, category))
}

// MkdirAll creates dir with mode 0700.
func (p privateFS) MkdirAll(dir string, _ os.FileMode) error { return p.FS.MkdirAll(dir, 0o700) }

// Lock creates and locks name with mode 0600.
func (p privateFS) Lock(name string) (io.Closer, error) {
	c, err := p.FS.Lock(name)
	if err == nil {
		if err = os.Chmod(name, 0o600); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, err
}

// Unwrap returns the wrapped file system.
func (p privateFS) Unwrap() vfs.FS { return p.FS }

// private returns a function that sets the mode of the file just opened
// as name to 0600 (or closes it and fails).
func private(name string) func(vfs.File, error) (vfs.File, error) {
	return func(f vfs.File, err error) (vfs.File, error) {
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(name, 0o600); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
}

// tightenModes creates dir with mode 0700, or takes group and other access
// away from it and from the files in it (stores created before heliosd
// used a 0077 umask have a 0755 directory and 0644 files).
func tightenModes(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fixed := 0
	if st, err := os.Stat(dir); err != nil {
		return err
	} else if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
		fixed++
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(filepath.Join(dir, e.Name()), 0o600); err != nil {
				return err
			}
			fixed++
		}
	}
	if fixed > 0 {
		log.Info("issuer store: took group and other access away", "dir", dir, "entries", fixed)
	}
	return nil
}
