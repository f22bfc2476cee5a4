package issuer

import (
	"encoding/binary"
	"time"

	"github.com/heliosdb/auth/core"
)

// Account is one user account as stored.
type Account struct {
	ID    uint64 `json:"id"`
	Email string `json:"email"`
	// Hash is the argon2id hash in PHC string form; never the password.
	Hash    string `json:"hash"`
	Created int64  `json:"created"`
	// NotBefore is the logout-all epoch: tokens issued before it (Unix
	// seconds) are revoked, and tokens minted afterwards are issued at or
	// after it.
	NotBefore int64 `json:"not_before,omitempty"`
}

// TokenRecord is a token's metadata. It never holds the token string.
type TokenRecord struct {
	ID         core.TokenID   `json:"id"`
	Account    uint64         `json:"account"`
	Name       string         `json:"name"`
	Type       core.TokenType `json:"type"`
	Scopes     core.ScopeSet  `json:"scopes"`
	Flags      core.Flags     `json:"flags,omitempty"`
	Created    int64          `json:"created"` // the token's issued-at, Unix seconds
	ExpiresAt  int64          `json:"expires_at"`
	LastUsed   int64          `json:"last_used,omitempty"`
	AllowedIPs []string       `json:"allowed_ips,omitempty"`
	// Session is the public id of the login token this token descends from
	// (itself for a login token; inherited by refresh and by tokens created
	// with it).
	Session string `json:"session,omitempty"`
	// RevokedAt is when the token was revoked (0: not revoked).
	RevokedAt int64 `json:"revoked_at,omitempty"`
	// ReplacedBy and RevokeAt are set by refresh: the new token's id and
	// when this one stops working.
	ReplacedBy string `json:"replaced_by,omitempty"`
	RevokeAt   int64  `json:"revoke_at,omitempty"`
}

// Claims returns the claims a token for this record carries (Version and
// KeyID are filled by the minter).
func (r *TokenRecord) Claims() core.Claims {
	return core.Claims{Type: r.Type, ID: r.ID, Account: r.Account, IssuedAt: r.Created,
		ExpiresAt: r.ExpiresAt, Scopes: r.Scopes, Flags: r.Flags}
}

// Active reports whether the token is neither revoked nor expired at now.
func (r *TokenRecord) Active(now time.Time) bool {
	return r.RevokedAt == 0 && now.Unix() < r.ExpiresAt
}

// LogKind is the kind of a revocation log entry.
type LogKind string

// Revocation log entry kinds.
const (
	LogToken   LogKind = "token"   // one token revoked
	LogAccount LogKind = "account" // an account's not-before epoch moved
	LogKey     LogKind = "key"     // a signing key retired
	// LogIPs: a token's IP allowlist (IPs), kept until ExpiresAt.
	LogIPs LogKind = "ips"
	// LogDatabase: a database registered (Database, Test) or removed
	// (Deleted).
	LogDatabase LogKind = "database"
	// LogKeyring: the keyring changed (KeyID rotated in as the signing key);
	// nodes fetch it again.
	LogKeyring LogKind = "keyring"
)

// LogEntry is one entry of the append-only revocation log.
type LogEntry struct {
	Seq  uint64  `json:"seq"`
	Kind LogKind `json:"kind"`
	// Token and ExpiresAt: for LogToken (the entry may be dropped once the
	// token would have expired).
	Token     core.TokenID `json:"token,omitzero"`
	ExpiresAt int64        `json:"expires_at,omitempty"`
	// Account: for LogToken and LogAccount.
	Account uint64 `json:"account,omitempty"`
	// NotBefore: for LogAccount.
	NotBefore int64 `json:"not_before,omitempty"`
	// KeyID: for LogKey and LogKeyring.
	KeyID uint16 `json:"key_id,omitempty"`
	// IPs: for LogIPs (addresses or CIDR networks, as the user gave them).
	IPs []string `json:"ips,omitempty"`
	// Database, Test and Deleted: for LogDatabase.
	Database string `json:"database,omitempty"`
	Test     bool   `json:"test,omitempty"`
	Deleted  bool   `json:"deleted,omitempty"`
}

// Database is one entry of the databases registry.
type Database struct {
	Name    string `json:"name"`
	Test    bool   `json:"test"`
	Created int64  `json:"created"`
}

// Key prefixes (see the package documentation).
var (
	keySeq         = []byte("m/seq")
	keyCompacted   = []byte("m/compacted")
	keyDBInit      = []byte("m/dbinit")
	keyApplied     = []byte("m/raftapplied")
	prefixDatabase = []byte("d/")
	prefixEmail    = []byte("a/e/")
	prefixAccount  = []byte("a/i/")
	prefixToken    = []byte("t/")
	prefixPending  = []byte("p/")
	prefixRevocLog = []byte("r/")
)

func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func emailKey(lower string) []byte { return append(append([]byte{}, prefixEmail...), lower...) }

func accountKey(id uint64) []byte { return u64(append([]byte{}, prefixAccount...), id) }

func tokenKey(account uint64, id core.TokenID) []byte {
	return append(u64(append([]byte{}, prefixToken...), account), id[:]...)
}

func tokenPrefix(account uint64) []byte { return u64(append([]byte{}, prefixToken...), account) }

func pendingKey(id core.TokenID) []byte { return append(append([]byte{}, prefixPending...), id[:]...) }

func databaseKey(name string) []byte { return append(append([]byte{}, prefixDatabase...), name...) }

func logKey(seq uint64) []byte { return u64(append([]byte{}, prefixRevocLog...), seq) }

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte{}, p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func u64ToID(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
