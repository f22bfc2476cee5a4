package issuer

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
)

// On a replicated store the keyring is replicated state: a rotation or
// retirement is an OpKeyring command carrying a KeyChange, applied on
// every replica in log order. Applying it writes the whole new keyring
// into the store (key m/keyring, in the command's batch, so raft
// snapshots carry it), then, once the batch is written, syncs the
// in-memory keyring the verifiers hold and rewrites the keyring file
// (0600, atomically). The store's copy is authoritative: a replica
// restarted or restored from a snapshot takes its keyring from it.

// keyKeyring holds a replicated store's keyring (keyfile form).
var keyKeyring = []byte("m/keyring")

// ErrKeyConflict is a rotation that lost a race with another one
// (both picked the same new key id): nothing changed; retry.
var ErrKeyConflict = errors.New("another key rotation committed first")

// KeyChange is a replicated keyring change: Add a new signing key, or
// Retire a key.
type KeyChange struct {
	Add    *NewKey `json:"add,omitempty"`
	Retire uint16  `json:"retire,omitempty"`
}

// NewKey is a key added by a replicated rotation.
type NewKey struct {
	ID      uint16 `json:"id"`
	Secret  []byte `json:"secret"`
	Created int64  `json:"created"`
}

// ringBox is the keyring a replicated store keeps in step.
type ringBox struct {
	ring *core.Keyring
	path string
}

// AttachKeyring gives a replicated store the keyring its verifiers hold
// and the file it is saved in (call it before raft starts). When the
// store already holds a keyring (written by replicated changes or a
// restored snapshot) ring and the file are brought in line with it.
func (s *Store) AttachKeyring(ring *core.Keyring, path string) error {
	s.rep.ring.Store(&ringBox{ring: ring, path: path})
	return s.installStoredKeyring()
}

// installStoredKeyring syncs the attached keyring and its file with the
// keyring in the store, if any.
func (s *Store) installStoredKeyring() error {
	rb := s.rep.ring.Load()
	if rb == nil {
		return nil
	}
	v, closer, err := s.db.Get(keyKeyring)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	stored, err := keyfile.Parse(bytes.Clone(v))
	closer.Close()
	if err != nil {
		return fmt.Errorf("stored keyring: %w", err)
	}
	return s.installKeyring(rb, stored)
}

// installKeyring makes the attached keyring hold next's keys (in place,
// so every verifier sees them) and saves it, when it differs.
func (s *Store) installKeyring(rb *ringBox, next *core.Keyring) error {
	have, _ := keyfile.Marshal(rb.ring)
	want, _ := keyfile.Marshal(next)
	if bytes.Equal(have, want) {
		return nil
	}
	if err := keyfile.Sync(rb.ring, next); err != nil {
		return err
	}
	if rb.path != "" {
		if err := keyfile.Save(rb.path, rb.ring); err != nil {
			return err
		}
	}
	s.log.Info("keyring replaced by the replicated one", "signing_key", rb.ring.Signing().ID, "keys", len(rb.ring.Keys()))
	return nil
}

// applyKeyChange applies a replicated keyring change: the new keyring
// (from the store's copy, or the attached one before the first change)
// goes into the batch with a keyring log entry; the attached keyring and
// its file follow once the batch is written.
func (s *Store) applyKeyChange(b *pebble.Batch, c *Command, effects *[]func()) (Result, error) {
	rb := s.rep.ring.Load()
	if rb == nil {
		return Result{}, errors.New("keyring change on a store without a keyring attached")
	}
	var next *core.Keyring
	v, closer, err := b.Get(keyKeyring)
	switch {
	case err == nil:
		next, err = keyfile.Parse(bytes.Clone(v))
		closer.Close()
	case errors.Is(err, pebble.ErrNotFound):
		var data []byte
		if data, err = keyfile.Marshal(rb.ring); err == nil {
			next, err = keyfile.Parse(data)
		}
	}
	if err != nil {
		return Result{}, fmt.Errorf("keyring change: %w", err)
	}
	ch := c.KeyChange
	switch {
	case ch.Add != nil:
		if len(ch.Add.Secret) != core.KeySize {
			return Result{}, errors.New("keyring change: a new key must have 32 bytes")
		}
		if k := next.Lookup(ch.Add.ID); k != nil {
			if subtle.ConstantTimeCompare(k.Secret[:], ch.Add.Secret) != 1 {
				return Result{}, ErrKeyConflict
			}
		} else {
			k := core.Key{ID: ch.Add.ID, Created: time.Unix(ch.Add.Created, 0).UTC()}
			copy(k.Secret[:], ch.Add.Secret)
			if err := next.Add(k); err != nil {
				return Result{}, err
			}
		}
		if err := next.SetSigning(ch.Add.ID); err != nil {
			return Result{}, err
		}
	case ch.Retire != 0:
		if err := checkRetire(next, ch.Retire); err != nil {
			return Result{}, err
		}
		if err := next.Retire(ch.Retire); err != nil {
			return Result{}, err
		}
	default:
		return Result{}, errors.New("keyring change: nothing to change")
	}
	data, err := keyfile.Marshal(next)
	if err != nil {
		return Result{}, err
	}
	seq := s.next()
	e := LogEntry{Seq: seq, Kind: LogKeyring, KeyID: next.Signing().ID}
	*effects = append(*effects, func() {
		if err := s.installKeyring(rb, next); err != nil {
			// The store's copy is written: a restart installs it.
			s.log.Error("installing the replicated keyring", "err", err)
		}
	})
	return Result{Seq: seq}, firstErr(b.Set(keyKeyring, data, nil), bput(b, logKey(seq), &e))
}

// checkRetire refuses to retire a key ring lacks or signs with.
func checkRetire(ring *core.Keyring, id uint16) error {
	if ring.Lookup(id) == nil {
		return &APIError{Status: http.StatusNotFound, Code: CodeKeyNotFound, Message: fmt.Sprintf("no key %d in the keyring", id)}
	}
	if ring.Signing().ID == id {
		return &APIError{Status: http.StatusConflict, Code: CodeSigningKey,
			Message: fmt.Sprintf("key %d is the signing key: rotate first (POST /v1/cluster/keys/rotate), then retire it", id)}
	}
	return nil
}

// keyConflict is ErrKeyConflict's REST answer.
var keyConflict = &APIError{Status: http.StatusConflict, Code: "KEY_CONFLICT",
	Message: "another key rotation committed at the same moment; nothing was changed by this one: check the keyring and retry if still needed"}

// rotateReplicated proposes a new signing key to the cluster; every
// replica adds it when the command commits.
func (s *Service) rotateReplicated() (uint16, uint64, error) {
	var id uint16
	for _, k := range s.ring.Keys() {
		id = max(id, k.ID)
	}
	if id == ^uint16(0) {
		return 0, 0, errors.New("keyring: key ids exhausted")
	}
	k := core.GenerateKey(id+1, s.opts.Now())
	res, err := s.store.Submit(&Command{Op: OpKeyring, At: s.opts.Now().Unix(), KeyID: k.ID,
		KeyChange: &KeyChange{Add: &NewKey{ID: k.ID, Secret: k.Secret[:], Created: k.Created.Unix()}}})
	if errors.Is(err, ErrKeyConflict) {
		return 0, 0, keyConflict
	}
	if err != nil {
		return 0, 0, err
	}
	s.log.Info("signing key rotated on every replica", "key_id", k.ID, "seq", res.Seq)
	return k.ID, res.Seq, nil
}

// retireReplicated retires key id on every replica (the keyring change,
// checked again where it is applied), then records the retirement in the
// revocation log. It returns the retirement's sequence number.
func (s *Service) retireReplicated(id uint16) (uint64, error) {
	if err := checkRetire(s.ring, id); err != nil {
		return 0, err
	}
	if _, err := s.store.Submit(&Command{Op: OpKeyring, At: s.opts.Now().Unix(), KeyID: id,
		KeyChange: &KeyChange{Retire: id}}); err != nil {
		return 0, err
	}
	res, err := s.store.Submit(&Command{Op: OpRetireKey, At: s.opts.Now().Unix(), KeyID: id})
	if err != nil {
		return 0, err
	}
	s.log.Info("signing key retired on every replica", "key_id", id, "seq", res.Seq)
	return res.Seq, nil
}
