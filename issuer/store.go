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

// Open opens (or creates) the store in dir and rebuilds the in-memory
// revocation view and IP policies from it.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: FormatVersion, Logger: pebbleLogger{log},
		Cache: cache, MemTableSize: memTableSize})
	if err != nil {
		return nil, fmt.Errorf("open issuer store %s: %w", dir, err)
	}
	s := &Store{db: db, log: log, reqs: make(chan *request, 4096), revs: NewRevocations(), pol: newPolicyView(),
		changed: make(chan struct{}), done: make(chan struct{}), pending: map[[12]byte]pendingRevoke{},
		stopMaint: make(chan struct{}), maintDone: make(chan struct{})}
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open issuer store %s: %w", dir, err)
	}
	registerWatermark(s)
	go s.writer()
	go s.maintain(s.stopMaint, s.maintDone)
	if _, err := s.Submit(&Command{Op: OpCreateDatabase, At: time.Now().Unix(), Database: DefaultDatabase, Init: true}); err != nil {
		s.Close()
		return nil, fmt.Errorf("open issuer store %s: default database: %w", dir, err)
	}
	return s, nil
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
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
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
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(after + 1), UpperBound: logKey(watermark + 1)})
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
// is synced (or the command failed and changed nothing).
func (s *Store) Submit(cmd *Command) (Result, error) {
	b, err := cmd.Encode()
	if err != nil {
		return Result{}, err
	}
	r := &request{cmd: b, done: make(chan struct{})}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return Result{}, ErrClosed
	}
	s.reqs <- r
	s.closeMu.RUnlock()
	<-r.done
	return r.res, r.err
}

// Close stops the writer once every queued command is committed, then
// flushes and closes Pebble.
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
	<-s.done
	if err := s.db.Flush(); err != nil {
		s.db.Close()
		return fmt.Errorf("flush issuer store: %w", err)
	}
	return s.db.Close()
}

// get reads key from the database (not from a batch). The value is copied.
func (s *Store) get(key []byte, into any) error {
	v, closer, err := s.db.Get(key)
	if err != nil {
		return err
	}
	defer closer.Close()
	return json.Unmarshal(v, into)
}

// pebbleLogger routes Pebble's messages to slog.
type pebbleLogger struct{ l *slog.Logger }

// Infof logs Pebble information at debug level.
func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

// Errorf logs a Pebble error.
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble", "msg", fmt.Sprintf(format, args...))
}

// Fatalf logs and panics, as Pebble expects of a fatal error.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("pebble fatal", "msg", fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}

var _ io.Closer = (*Store)(nil)
