package issuer

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// DefaultDatabase is the database every data directory starts with (not a
// test database).
const DefaultDatabase = "main"

// logIPs writes t's allowlist to the log at seq (so nodes learn it) when it
// has one, and schedules the in-memory update.
func (s *Store) logIPs(b *pebble.Batch, seq uint64, t *TokenRecord, effects *[]func()) error {
	if len(t.AllowedIPs) == 0 {
		return nil
	}
	e := LogEntry{Seq: seq, Kind: LogIPs, Token: t.ID, ExpiresAt: t.ExpiresAt, Account: t.Account, IPs: t.AllowedIPs}
	*effects = append(*effects, func() { s.pol.setIPs(e.Token, e.IPs, e.ExpiresAt) })
	return bput(b, logKey(seq), &e)
}

// applyCluster applies the commands of the cluster: the databases
// registry, keyring changes and log compaction.
func (s *Store) applyCluster(b *pebble.Batch, c *Command, effects *[]func()) (Result, error) {
	switch c.Op {
	case OpCreateDatabase:
		if c.Init {
			if found, err := bhas(b, keyDBInit); err != nil || found {
				return Result{}, err
			}
		}
		if found, err := bhas(b, databaseKey(c.Database)); err != nil || found {
			return Result{}, cmp(err, ErrDatabaseExists)
		}
		seq := s.next()
		d := Database{Name: c.Database, Test: c.Test, Created: c.At}
		e := LogEntry{Seq: seq, Kind: LogDatabase, Database: d.Name, Test: d.Test}
		*effects = append(*effects, func() { s.pol.setDB(d) })
		err := firstErr(bput(b, databaseKey(d.Name), &d), bput(b, logKey(seq), &e))
		if err == nil && c.Init {
			err = b.Set(keyDBInit, []byte{1}, nil)
		}
		return Result{Seq: seq, DB: &d}, err

	case OpDeleteDatabase:
		var d Database
		if err := bget(b, databaseKey(c.Database), &d); err != nil {
			return Result{}, cmp(err, ErrNoDatabase)
		}
		seq := s.next()
		e := LogEntry{Seq: seq, Kind: LogDatabase, Database: d.Name, Deleted: true}
		*effects = append(*effects, func() { s.pol.delDB(d.Name) })
		return Result{Seq: seq, DB: &d}, firstErr(b.Delete(databaseKey(d.Name), nil), bput(b, logKey(seq), &e))

	case OpKeyring:
		if c.KeyChange != nil {
			return s.applyKeyChange(b, c, effects)
		}
		seq := s.next()
		e := LogEntry{Seq: seq, Kind: LogKeyring, KeyID: c.KeyID}
		return Result{Seq: seq}, bput(b, logKey(seq), &e)

	case OpCompact:
		if len(c.Seqs) == 0 {
			return Result{}, nil
		}
		hi := s.compacted.Load()
		for _, q := range c.Seqs {
			if q > s.seq {
				return Result{}, errors.New("compact: sequence number beyond the log")
			}
			if err := b.Delete(logKey(q), nil); err != nil {
				return Result{}, err
			}
			hi = max(hi, q)
		}
		seq := s.next()
		*effects = append(*effects, func() { s.compacted.Store(max(s.compacted.Load(), hi)) })
		return Result{Seq: seq}, b.Set(keyCompacted, u64(nil, hi), nil)
	}
	return Result{}, fmt.Errorf("unknown command %q", c.Op)
}
