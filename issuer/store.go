package issuer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/heliosdb/auth/core/policyset"
)

// FormatVersion is the Pebble format major version the store pins. Raising
// it is a one-way upgrade of the data directory; do it deliberately.
const FormatVersion = pebble.FormatWALSyncChunks

// Pebble sizing: the block cache keeps token records of active accounts in
// memory (the writer reads a record on every revocation), and a larger
// memtable batches more group commits before a flush.
const (
	cacheSize    = 64 << 20
	memTableSize = 32 << 20
)

// maxGroup bounds how many queued commands one synced batch commits.
const maxGroup = 1024

// Store is the issuer's durable state: a Pebble database written by one
// goroutine that group-commits synced batches. Reads go straight to Pebble
// and see every acknowledged command.
type Store struct {
	db   *pebble.DB
	log  *slog.Logger
	reqs chan *request
	revs *Revocations
	pol  *policyView

	// viewMu makes the in-memory views and lastSeq change together: the
	// writer holds it while it applies a group's effects and publishes the
	// watermark, Snapshot reads under it.
	viewMu sync.RWMutex
	// compacted is the highest sequence number dropped from the log.
	compacted atomic.Uint64

	// lastSeq is the committed watermark: every command with a sequence
	// number up to it is durable.
	lastSeq atomic.Uint64
	// seq is the writer's next-to-assign counter (writer goroutine only).
	seq uint64

	// closeMu guards closed and sends on reqs: submitters share it, Close
	// takes it alone.
	closeMu sync.RWMutex
	closed  bool
	done    chan struct{}

	mu      sync.Mutex // guards changed
	changed chan struct{}

	pendingMu sync.Mutex
	pending   map[[12]byte]pendingRevoke

	stopMaint chan struct{}
	maintDone chan struct{}

	// dir is the Pebble directory; reserve the free space kept on its file
	// system (0: none; see StoreOptions.Reserve).
	dir     string
	reserve uint64
	// dbMu guards db: readers hold it shared (see acquire), the writer
	// holds it alone to swap a read-only database for a writable one, and
	// Close to close it (db is nil afterwards, or when a reopen failed).
	dbMu sync.RWMutex
	// readOnly: the store was opened on a file system below its reserve,
	// read-only; the writer reopens it for writing once there is space
	// (writer goroutine only, after OpenWith).
	readOnly bool
	// lock is the directory lock, held across reopening; pfs the file
	// system Pebble uses.
	lock *pebble.Lock
	pfs  vfs.FS
	// full and statfsFailed are the last free-space state the writer
	// logged (writer goroutine only).
	full, statfsFailed bool
	// failed is set once, with failedCh closed, when Pebble reports a fatal
	// write error: the store then refuses every write (see fail).
	failed   atomic.Pointer[StorageError]
	failedCh chan struct{}
	failOnce sync.Once

	// rep is the raft replica's state (StoreOptions.Replicated).
	rep replicaState
}

// pendingRevoke is a refreshed token waiting for its grace period to end.
type pendingRevoke struct {
	Account uint64 `json:"account"`
	At      int64  `json:"at"`
}

type request struct {
	cmd  []byte
	res  Result
	err  error
	done chan struct{}
}

// OpenWith opens (or creates) the store in dir with o, and rebuilds the
// in-memory revocation view and IP policies from it. The directory is
// mode 0700 and every file in it 0600 (modes left wider by older versions
// are tightened). On a file system already below the reserve it opens an
// existing store read-only, which needs no space (Pebble replays its WAL
// in memory): reads, the revocation view and token verification work, and
// writes are refused with STORAGE_FULL until space is freed, when the
// writer reopens it for writing.
func OpenWith(dir string, o StoreOptions) (*Store, error) {
	o.EnsureDefaults()
	log := o.Logger
	if err := tightenModes(dir, log); err != nil {
		return nil, fmt.Errorf("open issuer store %s: %w", dir, err)
	}
	s := &Store{log: log, reqs: make(chan *request, 4096), revs: NewRevocations(), pol: newPolicyView(),
		changed: make(chan struct{}), done: make(chan struct{}), pending: map[[12]byte]pendingRevoke{},
		stopMaint: make(chan struct{}), maintDone: make(chan struct{}),
		dir: dir, reserve: uint64(max(o.Reserve, 0)), failedCh: make(chan struct{})}
	s.rep.on = o.Replicated
	s.pfs = privateFS{o.fs}
	lock, err := pebble.LockDirectory(dir, s.pfs)
	if err != nil {
		return nil, fmt.Errorf("open issuer store %s: %w", dir, err)
	}
	s.lock = lock
	if free, err := freeBytes(dir); err == nil && s.reserve > 0 && free < s.reserve && s.exists() {
		s.readOnly, s.full = true, true
		log.Warn("issuer storage is below its reserve: the store is open read-only and refuses writes (STORAGE_FULL) until space is freed; token verification continues",
			"free", formatBytes(free), "reserve", formatBytes(s.reserve))
	}
	db, err := s.openDB(s.readOnly)
	if err != nil {
		if s.failure() == nil {
			lock.Close()
		}
		return nil, fmt.Errorf("open issuer store %s: %w", dir, err)
	}
	s.db = db
	if err := s.load(); err != nil {
		db.Close()
		lock.Close()
		return nil, fmt.Errorf("open issuer store %s: %w", dir, err)
	}
	registerWatermark(s)
	go s.writer()
	go s.maintain(s.stopMaint, s.maintDone)
	// The default database is created once per data directory; checking
	// first keeps a restart on a full disk from failing here. A replica
	// leaves it to the cluster's leader (EnsureDefaultDatabase).
	if s.rep.on {
		return s, nil
	}
	if found, err := s.has(keyDBInit); err != nil || !found {
		if _, err := s.Submit(&Command{Op: OpCreateDatabase, At: time.Now().Unix(), Database: DefaultDatabase, Init: true}); err != nil {
			s.Close()
			return nil, fmt.Errorf("open issuer store %s: default database: %w", dir, err)
		}
	}
	return s, nil
}

// exists reports whether dir holds a Pebble store already (one that can be
// opened read-only).
func (s *Store) exists() bool {
	desc, err := pebble.Peek(s.dir, s.pfs)
	return err == nil && desc.Exists
}

// openDB opens the database under the store's directory lock. A fatal
// error Pebble raises meanwhile fails the open instead of ending the
// process: on this goroutine it is recovered (openPebble); on one of
// Pebble's (a flush of the replayed WAL) the store fails and openDB stops
// waiting.
func (s *Store) openDB(readOnly bool) (*pebble.DB, error) {
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	opts := &pebble.Options{FormatMajorVersion: FormatVersion, Logger: &pebbleLogger{l: s.log, s: s},
		Cache: cache, MemTableSize: memTableSize, FS: s.pfs, Lock: s.lock, ReadOnly: readOnly}
	opts.WithFSDefaults()
	type opened struct {
		db  *pebble.DB
		err error
	}
	c := make(chan opened, 1)
	go func() {
		db, err := openPebble(s.dir, opts)
		c <- opened{db, err}
	}()
	select {
	case o := <-c:
		return o.db, o.err
	case <-s.failedCh:
		return nil, s.failure()
	}
}

// openPebble opens the database, recovering a fatal error Pebble raises
// on this goroutine while it opens (see pebbleLogger.Fatalf).
func openPebble(dir string, opts *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(pebbleFatal); !ok {
				panic(p)
			}
			db, err = nil, fmt.Errorf("pebble: %s", p)
		}
	}()
	return pebble.Open(dir, opts)
}

// reopenWritable replaces the read-only database with a writable one
// (writer goroutine; readers wait meanwhile). If that fails the store goes
// on read-only, or, when even that fails, refuses reads too.
func (s *Store) reopenWritable() error {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if err := s.db.Close(); err != nil {
		s.log.Warn("closing the read-only issuer store", "err", err)
	}
	s.db = nil
	db, err := s.openDB(false)
	if err == nil {
		s.db, s.readOnly = db, false
		s.log.Info("issuer store reopened for writing")
		return nil
	}
	s.log.Error("reopening the issuer store for writing", "err", err)
	if s.failure() == nil {
		if ro, rerr := s.openDB(true); rerr == nil {
			s.db = ro
		}
	}
	return err
}

// acquire returns the database for reading; release must be called once
// the read (and any iterator from it) is done.
func (s *Store) acquire() (db *pebble.DB, release func(), err error) {
	s.dbMu.RLock()
	if s.db == nil {
		s.dbMu.RUnlock()
		if f := s.failure(); f != nil {
			return nil, nil, f
		}
		return nil, nil, ErrClosed
	}
	return s.db, s.dbMu.RUnlock, nil
}

// has reports whether key exists in the database.
func (s *Store) has(key []byte) (bool, error) {
	db, release, err := s.acquire()
	if err != nil {
		return false, err
	}
	defer release()
	return bhas(db, key)
}

// load reads the watermark, the revocation log, pending revocations and IP
// policies.
func (s *Store) load() error {
	if v, closer, err := s.db.Get(keySeq); err == nil {
		s.seq = binary.BigEndian.Uint64(v)
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	s.lastSeq.Store(s.seq)
	if v, closer, err := s.db.Get(keyApplied); err == nil {
		s.rep.applied.Store(binary.BigEndian.Uint64(v))
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	if v, closer, err := s.db.Get(keyCompacted); err == nil {
		s.compacted.Store(binary.BigEndian.Uint64(v))
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	now := time.Now().Unix()
	if err := s.scan(prefixRevocLog, func(_, v []byte) error {
		var e LogEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("revocation log: %w", err)
		}
		if e.Kind == LogToken && e.ExpiresAt < now {
			return nil // the token has expired: verification refuses it anyway
		}
		s.revs.apply(&e)
		return nil
	}); err != nil {
		return err
	}
	if err := s.scan(prefixPending, func(k, v []byte) error {
		var p pendingRevoke
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("pending revocation: %w", err)
		}
		var id [12]byte
		copy(id[:], k[len(prefixPending):])
		s.pending[id] = p
		return nil
	}); err != nil {
		return err
	}
	if err := s.scan(prefixDatabase, func(_, v []byte) error {
		var d Database
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("database record: %w", err)
		}
		s.pol.setDB(d)
		return nil
	}); err != nil {
		return err
	}
	return s.scan(prefixToken, func(_, v []byte) error {
		var r TokenRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("token record: %w", err)
		}
		if len(r.AllowedIPs) > 0 && r.RevokedAt == 0 && r.ExpiresAt >= now {
			s.pol.setIPs(r.ID, r.AllowedIPs, r.ExpiresAt)
		}
		return nil
	})
}

// scan calls fn for every key with prefix p. k and v are valid only during
// the call.
func (s *Store) scan(p []byte, fn func(k, v []byte) error) error {
	db, release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// Revocations returns the exact in-memory revocation view fed by this store.
func (s *Store) Revocations() *Revocations { return s.revs }

// Policy returns the IP allowlists of tokens created with allowed_ips and
// the databases registry, as the process's own gateway checks them.
func (s *Store) Policy() *policyset.Set { return s.pol.set }

// Compacted returns the highest sequence number dropped from the log by
// compaction: a follower behind it needs a snapshot.
func (s *Store) Compacted() uint64 { return s.compacted.Load() }

// LastSeq returns the committed watermark: every command numbered up to it
// is durable and applied to the in-memory views.
func (s *Store) LastSeq() uint64 { return s.lastSeq.Load() }

// Changed returns a channel closed at the next commit that moves LastSeq
// (for followers of the log).
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// ReadLog returns up to limit revocation log entries with a sequence number
// greater than after, in order, and the watermark they were read at.
func (s *Store) ReadLog(after uint64, limit int) ([]LogEntry, uint64, error) {
	watermark := s.LastSeq()
	db, release, err := s.acquire()
	if err != nil {
		return nil, 0, err
	}
	defer release()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: logKey(after + 1), UpperBound: logKey(watermark + 1)})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	var out []LogEntry
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		var e LogEntry
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, 0, err
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, 0, fmt.Errorf("revocation log %d: %w", binary.BigEndian.Uint64(it.Key()[len(prefixRevocLog):]), err)
		}
		out = append(out, e)
	}
	return out, watermark, nil
}

// Submit serializes cmd, has the writer apply it, and returns once its batch
// is synced (or the command failed and changed nothing). When the storage
// is below its reserve it returns a *StorageError matching ErrStorageFull;
// once Pebble has failed a write, one matching ErrStorageFailed, at once.
func (s *Store) Submit(cmd *Command) (Result, error) {
	if f := s.failure(); f != nil {
		return Result{}, f
	}
	b, err := cmd.Encode()
	if err != nil {
		return Result{}, err
	}
	if s.rep.on {
		return s.propose(cmd, b)
	}
	r := &request{cmd: b, done: make(chan struct{})}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return Result{}, ErrClosed
	}
	select {
	case s.reqs <- r:
	case <-s.failedCh:
		s.closeMu.RUnlock()
		return Result{}, s.failure()
	}
	s.closeMu.RUnlock()
	select {
	case <-r.done:
	case <-s.failedCh:
		// The writer answers every request even after a failure; this
		// only guards against it having been stopped inside Pebble.
		select {
		case <-r.done:
		default:
			return Result{}, s.failure()
		}
	}
	return r.res, r.err
}

// Close stops the writer once every queued command is committed, then
// flushes and closes Pebble. After a fatal write error it leaves Pebble
// alone (its commit pipeline may hold locks) and returns that error: a
// restart recovers from the write-ahead log.
func (s *Store) Close() error {
	select {
	case <-s.stopMaint:
	default:
		close(s.stopMaint)
	}
	<-s.maintDone
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.closeMu.Unlock()
	select {
	case <-s.done:
	case <-s.failedCh:
	}
	if f := s.failure(); f != nil {
		return f
	}
	closed := make(chan error, 1)
	go func() { closed <- s.closePebble() }()
	select {
	case err := <-closed:
		return err
	case <-s.failedCh:
		return s.failure()
	case <-time.After(closeTimeout):
		return fmt.Errorf("close issuer store: Pebble did not finish within %s; every acknowledged write is in its write-ahead log", closeTimeout)
	}
}

// closeTimeout bounds how long Close waits for Pebble (a flush that cannot
// write must not hold up a shutdown: the WAL has every acknowledged write).
const closeTimeout = 10 * time.Second

// closePebble flushes the memtable (unless the disk is below the reserve:
// the WAL makes it unnecessary) and closes the database, recovering a fatal
// error Pebble raises meanwhile.
func (s *Store) closePebble() (err error) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(pebbleFatal); !ok {
				panic(p)
			}
			err = s.failure()
		}
	}()
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	db := s.db
	if db == nil {
		return nil
	}
	s.db = nil
	defer s.lock.Close()
	if free, ferr := freeBytes(s.dir); !s.readOnly && (s.reserve == 0 || ferr != nil || free >= s.reserve) {
		if err := db.Flush(); err != nil {
			db.Close()
			return fmt.Errorf("flush issuer store: %w", err)
		}
	}
	return db.Close()
}

// get reads key from the database (not from a batch). The value is copied.
func (s *Store) get(key []byte, into any) error {
	db, release, err := s.acquire()
	if err != nil {
		return err
	}
	defer release()
	v, closer, err := db.Get(key)
	if err != nil {
		return err
	}
	defer closer.Close()
	return json.Unmarshal(v, into)
}

// getRaw returns a copy of the value at key.
func (s *Store) getRaw(key []byte) ([]byte, error) {
	db, release, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	v, closer, err := db.Get(key)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

var _ io.Closer = (*Store)(nil)
