package issuer

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are argon2id's cost parameters.
type PasswordParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultPasswordParams are OWASP's first argon2id recommendation: 46 MiB,
// one pass, one lane. Hashing takes about 40 ms on this project's 2-core test
// machine, keeping a login well under 100 ms. Login also bounds how many
// hashes run at once (see Options.MaxConcurrentHashes), so a login flood
// cannot exhaust memory.
var DefaultPasswordParams = PasswordParams{Time: 1, Memory: 46 * 1024, Threads: 1}

const (
	saltLen = 16
	hashLen = 32
)

// hashPassword returns the PHC string form of password's argon2id hash:
// $argon2id$v=19$m=47104,t=1,p=1$<salt>$<hash> (unpadded base64).
func hashPassword(password string, p PasswordParams) string {
	var salt [saltLen]byte
	if _, err := rand.Read(salt[:]); err != nil {
		panic("issuer: crypto/rand failed: " + err.Error()) // BUG: the OS has no randomness
	}
	sum := argon2.IDKey([]byte(password), salt[:], p.Time, p.Memory, p.Threads, hashLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt[:]), enc.EncodeToString(sum))
}

// checkPassword reports whether password matches the PHC-encoded hash,
// comparing in constant time. It costs one argon2id hash with the stored
// parameters whatever the outcome.
func checkPassword(password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("password hash is not argon2id")
	}
	var v int
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errors.New("unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, fmt.Errorf("argon2 parameters: %w", err)
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("argon2 salt: %w", err)
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("argon2 hash: %w", err)
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
