package issuer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/heliosdb/auth/core"
)

// writer is the single goroutine that applies commands. It takes whatever is
// queued (up to maxGroup), applies it to one batch, and commits the batch
// with one synced write.
func (s *Store) writer() {
	defer close(s.done)
	group := make([]*request, 0, maxGroup)
	for {
		r, ok := <-s.reqs
		if !ok {
			return
		}
		group = append(group[:0], r)
	drain:
		for len(group) < maxGroup {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		s.commitAt(group, 0)
	}
}

// commitAt applies group to one indexed batch (so a command sees the writes of
// the commands before it in the group) and syncs it. The in-memory views are
// updated only once the batch is durable. index is the raft index of the
// group's last command on a replica (ApplyReplicated), 0 otherwise.
func (s *Store) commitAt(group []*request, index uint64) {
	metricGroupSize.Update(float64(len(group)))
	metricCommands.Add(len(group))
	start := s.seq
	effects, err := s.writeGroup(group, index)
	if err != nil && index > 0 {
		// Every replica applies the same commands: one that cannot write
		// them must stop rather than diverge (it recovers from the raft
		// log after a restart).
		s.fail(err.Error())
	}
	if err != nil {
		s.seq = start
		effects = nil
		for _, r := range group {
			if r.err == nil {
				r.res, r.err = Result{}, err
			}
		}
	}
	s.viewMu.Lock()
	for _, fn := range effects {
		fn()
	}
	if s.seq != start {
		s.lastSeq.Store(s.seq)
	}
	if err == nil && index > 0 {
		s.rep.applied.Store(index)
	}
	s.viewMu.Unlock()
	if s.seq != start {
		s.mu.Lock()
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
	for _, r := range group {
		close(r.done)
	}
}

// writeGroup applies the commands of group that the free space admits
// (see admit) and commits them with one synced write. An error means the
// batch did not commit: the commands without an error of their own failed
// with it. Once the store has failed it refuses everything; a fatal Pebble
// error raised beneath it (pebbleLogger.Fatalf) is recovered here and fails
// the store closed.
func (s *Store) writeGroup(group []*request, index uint64) (effects []func(), err error) {
	if f := s.failure(); f != nil {
		return nil, f
	}
	started := time.Now()
	var free uint64
	var measured bool
	if index == 0 {
		free, measured = s.measureSpace()
	}
	if s.readOnly && index > 0 {
		// A replica must apply what committed; it cannot refuse it.
		if err := s.reopenWritable(); err != nil {
			return nil, err
		}
	} else if s.readOnly {
		if !measured || free < s.reserve {
			for _, r := range group {
				metricStorageRefused.Inc()
				r.err = &StorageError{Free: free, Need: s.reserve}
			}
			return nil, nil
		}
		if err := s.reopenWritable(); err != nil {
			return nil, err
		}
	}
	b := s.db.NewIndexedBatch()
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(pebbleFatal); !ok {
				panic(p)
			}
			// b is not closed: Pebble's commit pipeline may still hold it.
			metricCommitFails.Inc()
			effects, err = nil, s.failure()
			return
		}
		b.Close()
	}()
	start := s.seq
	for _, r := range group {
		cmd, err := DecodeCommand(r.cmd)
		if err != nil {
			r.err = err
			continue
		}
		if serr := s.admit(cmd.Op, free, measured); serr != nil {
			r.err = serr
			continue
		}
		r.res, r.err = s.apply(b, cmd, &effects)
	}
	sync := pebble.Sync
	if index > 0 {
		// The raft log is synced; the applied index below says where a
		// restarted replica resumes.
		sync = pebble.NoSync
		if err = b.Set(keyApplied, u64(nil, index), nil); err != nil {
			return nil, err
		}
	} else if s.seq == start {
		return effects, nil
	}
	err = b.Set(keySeq, u64(nil, s.seq), nil)
	if err == nil {
		err = b.Commit(sync)
	}
	metricCommits.Inc()
	metricCommitTime.UpdateDuration(started)
	if err != nil {
		metricCommitFails.Inc()
		s.log.Error("issuer store commit failed", "err", err, "commands", len(group))
		return nil, fmt.Errorf("commit issuer store: %w", err)
	}
	return effects, nil
}

// next assigns the next sequence number.
func (s *Store) next() uint64 {
	s.seq++
	return s.seq
}

// apply applies one command. It validates before it writes, so a command
// that fails leaves the batch untouched. effects run after the commit.
func (s *Store) apply(b *pebble.Batch, c *Command, effects *[]func()) (Result, error) {
	switch c.Op {
	case OpSignup:
		lower := strings.ToLower(c.Email)
		if found, err := bhas(b, emailKey(lower)); err != nil || found {
			return Result{}, cmp(err, ErrEmailTaken)
		}
		seq := s.next()
		acc := &Account{ID: seq, Email: c.Email, Hash: c.Hash, Created: c.At}
		return Result{Seq: seq, Account: acc}, firstErr(b.Set(emailKey(lower), u64(nil, seq), nil), bput(b, accountKey(seq), acc))

	case OpCreateToken:
		if c.Token == nil {
			return Result{}, errors.New("create_token without a token")
		}
		acc, err := loadAccount(b, c.Token.Account)
		if err != nil {
			return Result{}, err
		}
		t := c.Token.issuedNoEarlierThan(acc.NotBefore)
		seq := s.next()
		return Result{Seq: seq, Token: &t}, firstErr(bput(b, tokenKey(t.Account, t.ID), &t), s.logIPs(b, seq, &t, effects))

	case OpRefresh:
		if c.Token == nil {
			return Result{}, errors.New("refresh without a token")
		}
		old, err := loadToken(b, c.Account, c.TokenID)
		if err != nil {
			return Result{}, err
		}
		switch {
		case old.RevokedAt != 0:
			return Result{}, ErrTokenRevoked
		case old.ReplacedBy != "":
			return Result{}, ErrAlreadyRefreshed
		}
		acc, err := loadAccount(b, c.Account)
		if err != nil {
			return Result{}, err
		}
		t := c.Token.issuedNoEarlierThan(acc.NotBefore)
		seq := s.next()
		old.ReplacedBy, old.RevokeAt = t.ID.String(), c.RevokeAt
		p := pendingRevoke{Account: c.Account, At: c.RevokeAt}
		*effects = append(*effects, func() {
			s.pendingMu.Lock()
			s.pending[old.ID] = p
			s.pendingMu.Unlock()
		})
		return Result{Seq: seq, Token: &t}, firstErr(bput(b, tokenKey(old.Account, old.ID), old),
			bput(b, tokenKey(t.Account, t.ID), &t), bput(b, pendingKey(old.ID), &p), s.logIPs(b, seq, &t, effects))

	case OpRevokeToken:
		t, err := loadToken(b, c.Account, c.TokenID)
		if err != nil {
			return Result{}, err
		}
		if t.RevokedAt != 0 {
			return Result{Token: t}, ErrTokenRevoked
		}
		seq := s.next()
		t.RevokedAt, t.RevokeAt = c.At, 0
		e := LogEntry{Seq: seq, Kind: LogToken, Token: t.ID, ExpiresAt: t.ExpiresAt, Account: t.Account}
		*effects = append(*effects, func() {
			s.revs.apply(&e)
			s.pol.delIPs(e.Token)
			s.pendingMu.Lock()
			delete(s.pending, e.Token)
			s.pendingMu.Unlock()
		})
		return Result{Seq: seq, Token: t}, firstErr(bput(b, tokenKey(t.Account, t.ID), t), bput(b, logKey(seq), &e),
			b.Delete(pendingKey(t.ID), nil))

	case OpLogoutAll:
		acc, err := loadAccount(b, c.Account)
		if err != nil {
			return Result{}, err
		}
		if c.NotBefore <= acc.NotBefore {
			return Result{Account: acc}, nil
		}
		seq := s.next()
		acc.NotBefore = c.NotBefore
		e := LogEntry{Seq: seq, Kind: LogAccount, Account: acc.ID, NotBefore: c.NotBefore}
		*effects = append(*effects, func() { s.revs.apply(&e) })
		return Result{Seq: seq, Account: acc}, firstErr(bput(b, accountKey(acc.ID), acc), bput(b, logKey(seq), &e))

	case OpRetireKey:
		seq := s.next()
		e := LogEntry{Seq: seq, Kind: LogKey, KeyID: c.KeyID}
		*effects = append(*effects, func() { s.revs.apply(&e) })
		return Result{Seq: seq}, bput(b, logKey(seq), &e)

	case OpTouch:
		var changed bool
		for _, u := range c.Uses {
			t, err := loadToken(b, u.Account, u.Token)
			if errors.Is(err, ErrTokenNotFound) || (err == nil && u.At <= t.LastUsed) {
				continue
			}
			if err != nil {
				return Result{}, err
			}
			t.LastUsed = u.At
			if err := bput(b, tokenKey(t.Account, t.ID), t); err != nil {
				return Result{}, err
			}
			changed = true
		}
		if !changed {
			return Result{}, nil
		}
		return Result{Seq: s.next()}, nil
	}
	return s.applyCluster(b, c, effects)
}

// bhas reports whether key exists in r: a batch (and the database under
// it) or the database.
func bhas(r pebble.Reader, key []byte) (bool, error) {
	_, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

// bget decodes the JSON value at key, reading through the batch.
func bget(b *pebble.Batch, key []byte, into any) error {
	v, closer, err := b.Get(key)
	if err != nil {
		return err
	}
	defer closer.Close()
	return json.Unmarshal(v, into)
}

// bput writes v as JSON at key.
func bput(b *pebble.Batch, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Set(key, data, nil)
}

func loadAccount(b *pebble.Batch, id uint64) (*Account, error) {
	var a Account
	if err := bget(b, accountKey(id), &a); err != nil {
		return nil, cmp(err, ErrNoAccount)
	}
	return &a, nil
}

func loadToken(b *pebble.Batch, account uint64, id core.TokenID) (*TokenRecord, error) {
	var t TokenRecord
	if err := bget(b, tokenKey(account, id), &t); err != nil {
		return nil, cmp(err, ErrTokenNotFound)
	}
	return &t, nil
}

// cmp maps pebble.ErrNotFound (and, when err is nil, "found") to notFound.
func cmp(err, notFound error) error {
	if err == nil || errors.Is(err, pebble.ErrNotFound) {
		return notFound
	}
	return err
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// issuedNoEarlierThan returns a copy of the record moved, lifetime kept, so
// that it is issued no earlier than notBefore: a token is minted from the
// record after it commits, and one issued before the account's logout-all
// epoch would be born revoked.
func (r *TokenRecord) issuedNoEarlierThan(notBefore int64) TokenRecord {
	t := *r
	if t.Created < notBefore {
		d := notBefore - t.Created
		t.Created, t.ExpiresAt = t.Created+d, t.ExpiresAt+d
	}
	return t
}
