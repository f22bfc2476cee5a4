package issuer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
)

// replicaRing opens a replicated store in a temporary directory with a
// copy of seed attached (saved to its own keyring file).
func replicaRing(t *testing.T, seed []byte) (*Store, *core.Keyring, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := OpenWith(filepath.Join(dir, "issuer"), StoreOptions{Replicated: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ring, err := keyfile.Parse(seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keyring.json")
	if err := keyfile.Save(path, ring); err != nil {
		t.Fatal(err)
	}
	if err := s.AttachKeyring(ring, path); err != nil {
		t.Fatal(err)
	}
	return s, ring, path
}

func applyOne(t *testing.T, s *Store, index uint64, c *Command) Applied {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s.ApplyReplicated(index, [][]byte{b})[0]
}

// checkRing checks ring and its file: signing key, retired keys.
func checkRing(t *testing.T, ring *core.Keyring, path string, signing uint16, retired ...uint16) {
	t.Helper()
	file, err := keyfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("keyring file mode %v", fi.Mode().Perm())
	}
	for name, r := range map[string]*core.Keyring{"in memory": ring, "file": file} {
		if r.Signing().ID != signing {
			t.Fatalf("keyring %s signs with %d, want %d", name, r.Signing().ID, signing)
		}
		for _, id := range retired {
			if k := r.Lookup(id); k == nil || !k.Retired {
				t.Fatalf("keyring %s: key %d not retired", name, id)
			}
		}
	}
}

// TestReplicatedKeyChanges: a rotation and a retirement applied as
// replicated commands change the attached keyring in place and its file;
// a rotation racing another one for the same key id is refused
// (ErrKeyConflict) and changes nothing; the signing key cannot be
// retired; a state snapshot carries the keyring to a replica restored
// from it; a store reopened with a lagging keyring file takes the stored
// keyring.
func TestReplicatedKeyChanges(t *testing.T) {
	seed, _ := keyfile.Marshal(core.GenerateKeyring(time.Now()))
	a, ringA, pathA := replicaRing(t, seed)
	held := ringA // verifiers hold this pointer: it must change in place

	k2 := core.GenerateKey(2, time.Now())
	rot := &Command{Op: OpKeyring, KeyID: 2, KeyChange: &KeyChange{Add: &NewKey{ID: 2, Secret: k2.Secret[:], Created: k2.Created.Unix()}}}
	if r := applyOne(t, a, 1, rot); r.Err != nil || r.Result.Seq == 0 {
		t.Fatalf("rotate: %+v", r)
	}
	checkRing(t, held, pathA, 2)
	if !bytes.Equal(held.Lookup(2).Secret[:], k2.Secret[:]) {
		t.Fatal("the rotated key's secret differs from the command's")
	}

	other := core.GenerateKey(2, time.Now())
	race := &Command{Op: OpKeyring, KeyID: 2, KeyChange: &KeyChange{Add: &NewKey{ID: 2, Secret: other.Secret[:], Created: other.Created.Unix()}}}
	if r := applyOne(t, a, 2, race); !errors.Is(r.Err, ErrKeyConflict) {
		t.Fatalf("a second rotation to key 2: %+v, want ErrKeyConflict", r)
	}
	if !bytes.Equal(held.Lookup(2).Secret[:], k2.Secret[:]) {
		t.Fatal("a refused rotation replaced key 2")
	}

	if r := applyOne(t, a, 3, &Command{Op: OpKeyring, KeyID: 2, KeyChange: &KeyChange{Retire: 2}}); r.Err == nil {
		t.Fatal("retiring the signing key was applied")
	}
	if r := applyOne(t, a, 4, &Command{Op: OpKeyring, KeyID: 1, KeyChange: &KeyChange{Retire: 1}}); r.Err != nil {
		t.Fatalf("retire 1: %v", r.Err)
	}
	checkRing(t, held, pathA, 2, 1)

	// A replica restored from A's snapshot gets the keyring.
	st, err := a.TakeState()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := st.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	st.Release()
	b, ringB, pathB := replicaRing(t, seed)
	if restored, err := b.RestoreState(&buf); err != nil || !restored {
		t.Fatalf("restore: %v %v", restored, err)
	}
	checkRing(t, ringB, pathB, 2, 1)

	// A's keyring file lags behind its store (the seed): reopened, the
	// store's keyring wins.
	dir := filepath.Dir(pathA)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	stale, _ := keyfile.Parse(seed)
	if err := keyfile.Save(pathA, stale); err != nil {
		t.Fatal(err)
	}
	a2, err := OpenWith(filepath.Join(dir, "issuer"), StoreOptions{Replicated: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if err := a2.AttachKeyring(stale, pathA); err != nil {
		t.Fatal(err)
	}
	checkRing(t, stale, pathA, 2, 1)
}
