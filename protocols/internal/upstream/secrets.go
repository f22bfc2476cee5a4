package upstream

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/heliosdb/auth/core/atomicfile"
)

// Passwords are the six roles' passwords on one upstream, by role name.
// They are random, made once, and kept in the data directory (0600): the
// client never learns them and the upstream never sees a token.
type Passwords map[string]string

// For returns r's password.
func (p Passwords) For(r Role) string { return p[r.Name()] }

// LoadPasswords reads the passwords file at path, creating it (0600) with a
// fresh random password for every role it lacks. A file another user may
// read is refused: it holds database credentials.
func LoadPasswords(path string) (Passwords, error) {
	p := Passwords{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s is readable by group or others (mode %v): it holds the upstream roles' passwords; run chmod 600 on it", path, st.Mode().Perm())
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	changed := false
	for _, r := range Roles {
		if p[r.Name()] != "" {
			continue
		}
		var raw [24]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, err
		}
		p[r.Name()] = hex.EncodeToString(raw[:])
		changed = true
	}
	if changed {
		js, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteBytes(path, 0o600, append(js, '\n')); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return p, nil
}
