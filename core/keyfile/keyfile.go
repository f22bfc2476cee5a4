// Package keyfile loads and saves a core.Keyring as a file. It owns the
// keyring's on-disk form and its permission rules: a key file must be mode
// 0600 (no group or other access) and is refused otherwise. It must never log
// or print key material.
//
// The file is JSON:
//
//	{"signing": 2, "keys": [{"id": 1, "secret": "<base64>", "created": "…", "retired": true}, …]}
package keyfile

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/atomicfile"
)

type fileKey struct {
	ID      uint16    `json:"id"`
	Secret  string    `json:"secret"`
	Created time.Time `json:"created"`
	Retired bool      `json:"retired,omitempty"`
}

type file struct {
	Signing uint16    `json:"signing"`
	Keys    []fileKey `json:"keys"`
}

// Load reads the keyring at path. It refuses a file that group or others can
// read or write.
func Load(path string) (*core.Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load keyring %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load keyring %s: %w", path, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load keyring %s: mode %#o lets other users read the keys; run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("load keyring %s: %w", path, err)
	}
	ring, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load keyring %s: %w", path, err)
	}
	return ring, nil
}

// Parse parses the file form of a keyring (as Marshal makes it).
func Parse(data []byte) (*core.Keyring, error) {
	var kf file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, err
	}
	keys := make([]core.Key, 0, len(kf.Keys))
	for _, k := range kf.Keys {
		secret, err := base64.StdEncoding.DecodeString(k.Secret)
		if err != nil || len(secret) != core.KeySize {
			return nil, fmt.Errorf("key %d: secret must be %d bytes of base64", k.ID, core.KeySize)
		}
		ck := core.Key{ID: k.ID, Created: k.Created, Retired: k.Retired}
		copy(ck.Secret[:], secret)
		keys = append(keys, ck)
	}
	return core.NewKeyring(kf.Signing, keys...)
}

// Sync makes dst hold exactly the keys of src (new keys added, the signing
// key switched, retired keys retired), without replacing dst, so verifiers
// that hold dst see the change at once.
func Sync(dst, src *core.Keyring) error {
	for _, k := range src.Keys() {
		if dst.Lookup(k.ID) == nil {
			if err := dst.Add(core.Key{ID: k.ID, Secret: k.Secret, Created: k.Created}); err != nil {
				return err
			}
		}
	}
	if err := dst.SetSigning(src.Signing().ID); err != nil {
		return err
	}
	for _, k := range src.Keys() {
		if k.Retired {
			if err := dst.Retire(k.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Marshal returns the file form of ring.
func Marshal(ring *core.Keyring) ([]byte, error) {
	kf := file{Signing: ring.Signing().ID}
	for _, k := range ring.Keys() {
		kf.Keys = append(kf.Keys, fileKey{ID: k.ID, Secret: base64.StdEncoding.EncodeToString(k.Secret[:]), Created: k.Created, Retired: k.Retired})
	}
	return json.MarshalIndent(kf, "", "  ")
}

// Save writes ring to path atomically (a temporary file renamed over it),
// with mode 0600.
func Save(path string, ring *core.Keyring) error {
	data, err := Marshal(ring)
	if err != nil {
		return fmt.Errorf("save keyring %s: %w", path, err)
	}
	if err := atomicfile.WriteBytes(path, 0o600, append(data, '\n')); err != nil {
		return fmt.Errorf("save keyring %s: %w", path, err)
	}
	return nil
}

// LoadOrGenerate loads the keyring at path, or, when no file exists there,
// generates a keyring with one fresh key and saves it. created reports
// whether it generated one.
func LoadOrGenerate(path string, now time.Time) (ring *core.Keyring, created bool, err error) {
	ring, err = Load(path)
	if err == nil {
		return ring, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	ring = core.GenerateKeyring(now)
	if err := Save(path, ring); err != nil {
		return nil, false, err
	}
	return ring, true, nil
}
