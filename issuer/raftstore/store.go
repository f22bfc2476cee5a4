// Package raftstore keeps hashicorp/raft's log and stable state in Pebble:
// one Store is both the raft.LogStore (entries keyed by index, written
// with synced batches) and the raft.StableStore (the current term, the
// last vote), in its own directory next to the issuer's store.
package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// ErrKeyNotFound is what Get returns for a key never set. Its text is
// "not found", which is what raft itself checks for on a fresh store.
var ErrKeyNotFound = errors.New("not found")

// Key prefixes: 'l' + big-endian index → encoded log entry; 's' + key →
// stable value.
const (
	prefixLog    = 'l'
	prefixStable = 's'
)

// Store is a raft.LogStore and raft.StableStore on one Pebble database.
type Store struct {
	db *pebble.DB
}

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Open opens (or creates) the store in dir; Pebble's messages go to log
// (nil: discarded).
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := &pebble.Options{FormatMajorVersion: pebble.FormatWALSyncChunks, MemTableSize: 16 << 20, Logger: pebbleLogger{log}}
	opts.WithFSDefaults()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func logKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

func stableKey(key []byte) []byte { return append([]byte{prefixStable}, key...) }

// FirstIndex implements raft.LogStore: the lowest index stored, 0 when
// there is none.
func (s *Store) FirstIndex() (uint64, error) { return s.edge(true) }

// LastIndex implements raft.LogStore: the highest index stored, 0 when
// there is none.
func (s *Store) LastIndex() (uint64, error) { return s.edge(false) }

func (s *Store) edge(first bool) (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: []byte{prefixLog + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var ok bool
	if first {
		ok = it.First()
	} else {
		ok = it.Last()
	}
	if !ok {
		return 0, it.Error()
	}
	return binary.BigEndian.Uint64(it.Key()[1:]), nil
}

// GetLog implements raft.LogStore: raft.ErrLogNotFound when index is not
// stored.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	v, closer, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	return decodeLog(v, log)
}

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs implements raft.LogStore: every entry in one synced batch.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	b := s.db.NewBatch()
	defer b.Close()
	var buf []byte
	for _, l := range logs {
		buf = encodeLog(buf[:0], l)
		if err := b.Set(logKey(l.Index), buf, nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

// DeleteRange implements raft.LogStore: removes indexes min through max,
// both included.
func (s *Store) DeleteRange(min, max uint64) error {
	if max < min {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(logKey(min), logKey(max+1), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// Set implements raft.StableStore (synced).
func (s *Store) Set(key, val []byte) error { return s.db.Set(stableKey(key), val, pebble.Sync) }

// Get implements raft.StableStore: ErrKeyNotFound for a key never set.
func (s *Store) Get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(stableKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// SetUint64 implements raft.StableStore.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore: 0 for a key never set.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if errors.Is(err, ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft stable key %q: %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// encodeLog appends l's encoding to buf: index, term, type, appended-at
// (Unix nanoseconds), then data and extensions, each length-prefixed.
func encodeLog(buf []byte, l *raft.Log) []byte {
	buf = binary.BigEndian.AppendUint64(buf, l.Index)
	buf = binary.BigEndian.AppendUint64(buf, l.Term)
	buf = append(buf, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(at))
	buf = binary.AppendUvarint(buf, uint64(len(l.Data)))
	buf = append(buf, l.Data...)
	buf = binary.AppendUvarint(buf, uint64(len(l.Extensions)))
	return append(buf, l.Extensions...)
}

// errCorrupt is a stored entry that does not decode.
var errCorrupt = errors.New("raft store: corrupt log entry")

func decodeLog(v []byte, l *raft.Log) error {
	if len(v) < 25 {
		return errCorrupt
	}
	l.Index = binary.BigEndian.Uint64(v)
	l.Term = binary.BigEndian.Uint64(v[8:])
	l.Type = raft.LogType(v[16])
	if at := int64(binary.BigEndian.Uint64(v[17:])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	} else {
		l.AppendedAt = time.Time{}
	}
	rest := v[25:]
	var err error
	if l.Data, rest, err = chunk(rest); err != nil {
		return err
	}
	if l.Extensions, rest, err = chunk(rest); err != nil {
		return err
	}
	if len(rest) != 0 {
		return errCorrupt
	}
	return nil
}

// chunk reads one length-prefixed byte string (copied: Pebble's value
// is only valid until its closer runs). Empty is nil.
func chunk(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, errCorrupt
	}
	b = b[k:]
	if n == 0 {
		return nil, b, nil
	}
	return append([]byte(nil), b[:n]...), b[n:], nil
}

// pebbleLogger passes Pebble's messages to slog: its informational lines
// (WAL replay) at debug level. A fatal error panics, as Pebble's own
// default logger ends the process: the raft log cannot go on.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("raft log store", "msg", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("raft log store", "msg", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("raft log store failed", "msg", msg)
	panic("raft log store: " + msg)
}
