package core

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// KeySize is the size of a MAC key in bytes (BLAKE3's key size).
const KeySize = 32

// Key is one MAC key. A Key value is immutable once it is in a Keyring:
// retiring a key publishes a new Key value in its place.
type Key struct {
	ID      uint16
	Secret  [KeySize]byte
	Created time.Time
	Retired bool
}

// keyState is one immutable snapshot of a keyring.
type keyState struct {
	signing uint16
	keys    map[uint16]*Key
	list    []*Key // the same keys, for the verifier's short linear scan
}

// publish fills list from keys and stores st.
func (r *Keyring) publish(st *keyState) {
	st.list = st.list[:0]
	for _, k := range st.keys {
		st.list = append(st.list, k)
	}
	r.state.Store(st)
}

// Keyring holds the keys by id: one signing key, the others verifying only,
// some possibly retired. Readers see immutable snapshots through an atomic
// pointer, so lookups never lock and are safe from any goroutine; changes
// (Add, SetSigning, Retire) are serialized and publish a new snapshot.
type Keyring struct {
	mu    sync.Mutex // serializes writers
	state atomic.Pointer[keyState]
}

// NewKeyring returns a keyring holding keys, with signing as the signing key.
func NewKeyring(signing uint16, keys ...Key) (*Keyring, error) {
	st := &keyState{signing: signing, keys: make(map[uint16]*Key, len(keys))}
	for i := range keys {
		k := keys[i]
		if _, dup := st.keys[k.ID]; dup {
			return nil, fmt.Errorf("keyring: duplicate key id %d", k.ID)
		}
		st.keys[k.ID] = &k
	}
	if k, ok := st.keys[signing]; !ok || k.Retired {
		return nil, fmt.Errorf("keyring: signing key %d is missing or retired", signing)
	}
	r := &Keyring{}
	r.publish(st)
	return r, nil
}

// GenerateKey returns a new random key with the given id.
func GenerateKey(id uint16, now time.Time) Key {
	k := Key{ID: id, Created: now.UTC().Truncate(time.Second)}
	if _, err := rand.Read(k.Secret[:]); err != nil {
		panic("core: crypto/rand failed: " + err.Error()) // BUG: the OS has no randomness
	}
	return k
}

// GenerateKeyring returns a keyring with one fresh signing key (id 1).
func GenerateKeyring(now time.Time) *Keyring {
	r, _ := NewKeyring(1, GenerateKey(1, now))
	return r
}

// Lookup returns the key with the given id, or nil.
func (r *Keyring) Lookup(id uint16) *Key {
	for _, k := range r.state.Load().list {
		if k.ID == id {
			return k
		}
	}
	return nil
}

// Signing returns the current signing key.
func (r *Keyring) Signing() *Key {
	st := r.state.Load()
	return st.keys[st.signing]
}

// Keys returns every key, ordered by id.
func (r *Keyring) Keys() []Key {
	st := r.state.Load()
	out := make([]Key, 0, len(st.keys))
	for _, k := range st.keys {
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// update applies fn to a copy of the current state and publishes it.
func (r *Keyring) update(fn func(st *keyState) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.state.Load()
	st := &keyState{signing: old.signing, keys: make(map[uint16]*Key, len(old.keys)+1)}
	for id, k := range old.keys {
		st.keys[id] = k
	}
	if err := fn(st); err != nil {
		return err
	}
	r.publish(st)
	return nil
}

// Rotate adds a fresh key with the next free id and makes it the signing key.
// Older keys keep verifying until they are retired. It returns the new key's id.
func (r *Keyring) Rotate(now time.Time) (uint16, error) {
	var id uint16
	err := r.update(func(st *keyState) error {
		for k := range st.keys {
			id = max(id, k)
		}
		if id == ^uint16(0) {
			return errors.New("keyring: key ids exhausted")
		}
		id++
		k := GenerateKey(id, now)
		st.keys[id] = &k
		st.signing = id
		return nil
	})
	return id, err
}

// Add adds a key (verifying only until SetSigning makes it the signing key).
func (r *Keyring) Add(k Key) error {
	return r.update(func(st *keyState) error {
		if _, dup := st.keys[k.ID]; dup {
			return fmt.Errorf("keyring: key id %d already exists", k.ID)
		}
		st.keys[k.ID] = &k
		return nil
	})
}

// SetSigning makes key id the signing key.
func (r *Keyring) SetSigning(id uint16) error {
	return r.update(func(st *keyState) error {
		k, ok := st.keys[id]
		if !ok || k.Retired {
			return fmt.Errorf("keyring: key %d is missing or retired", id)
		}
		st.signing = id
		return nil
	})
}

// Retire marks key id retired: every token under it fails verification from
// now on. The signing key cannot be retired; rotate first.
func (r *Keyring) Retire(id uint16) error {
	return r.update(func(st *keyState) error {
		k, ok := st.keys[id]
		if !ok {
			return fmt.Errorf("keyring: no key %d", id)
		}
		if id == st.signing {
			return fmt.Errorf("keyring: key %d is the signing key; rotate before retiring it", id)
		}
		if k.Retired {
			return nil
		}
		nk := *k
		nk.Retired = true
		st.keys[id] = &nk
		return nil
	})
}
