package core

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"time"
)

// Layout of the binary token (see the package documentation).
const (
	FormatVersion = 1

	offVersion = 0
	offKeyID   = 1
	offType    = 3
	offID      = 4
	offAccount = 16
	offIssued  = 24
	offExpires = 28
	offScopes  = 32
	offFlags   = 36
	payloadLen = 37
	tagLen     = 16
	offTag     = payloadLen
	offCRC     = offTag + tagLen
	binaryLen  = offCRC + 4 // 57

	// BodyLen is the number of base62 characters after the prefix.
	BodyLen = 79
	// MaxTokenLen is the length of the longest token string.
	MaxTokenLen = len("hdb_live_") + BodyLen
)

// TokenType is the kind of token: live (a user's session), test (test
// databases only) or service (automation).
type TokenType uint8

// Token types; the values are part of the token format.
const (
	TypeLive    TokenType = 1
	TypeTest    TokenType = 2
	TypeService TokenType = 3
)

// Prefix returns the token string's prefix, e.g. "hdb_live_".
func (t TokenType) Prefix() string {
	switch t {
	case TypeLive:
		return "hdb_live_"
	case TypeTest:
		return "hdb_test_"
	case TypeService:
		return "hdb_svc_"
	}
	return ""
}

// String returns the type's name in the REST API: "live", "test" or "service".
func (t TokenType) String() string {
	switch t {
	case TypeLive:
		return "live"
	case TypeTest:
		return "test"
	case TypeService:
		return "service"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Valid reports whether t is one of the three token types.
func (t TokenType) Valid() bool { return t >= TypeLive && t <= TypeService }

// ParseTokenType parses an API type name: "live", "test", "service" (or "svc").
func ParseTokenType(s string) (TokenType, error) {
	switch s {
	case "live":
		return TypeLive, nil
	case "test":
		return TypeTest, nil
	case "service", "svc":
		return TypeService, nil
	}
	return 0, fmt.Errorf("unknown token type %q: use live, test or service", s)
}

// Flags are per-token policy bits.
type Flags uint8

// Flag bits.
const (
	// FlagIPPolicy: the token's record has an IP allowlist that gateways enforce.
	FlagIPPolicy Flags = 1 << 0
	// FlagTestOnly: the token may reach test databases only.
	FlagTestOnly Flags = 1 << 1
)

// TokenID is a token's 96 random bits: its identity and its revocation key.
type TokenID [12]byte

// NewTokenID returns a fresh random token id.
func NewTokenID() TokenID {
	var id TokenID
	if _, err := rand.Read(id[:]); err != nil {
		panic("core: crypto/rand failed: " + err.Error()) // BUG: the OS has no randomness
	}
	return id
}

// tokenIDPrefix starts every public token id.
const tokenIDPrefix = "tok_"

// String returns the public id of the token's record, "tok_" + 17 base62
// characters. It is derived from, and reversible to, the token id.
func (id TokenID) String() string {
	b := make([]byte, 0, len(tokenIDPrefix)+17)
	b = append(b, tokenIDPrefix...)
	return string(appendBase62(b, id[:]))
}

// ParseTokenID parses a public token id made by TokenID.String.
func ParseTokenID(s string) (TokenID, error) {
	var id TokenID
	body, ok := strings.CutPrefix(s, tokenIDPrefix)
	if !ok || !decodeBase62(id[:], []byte(body)) {
		return id, fmt.Errorf("malformed token id %q: ids look like tok_ followed by 17 letters and digits", s)
	}
	return id, nil
}

// Claims is what a token says about itself once verified.
type Claims struct {
	Version   uint8
	KeyID     uint16
	Type      TokenType
	ID        TokenID
	Account   uint64
	IssuedAt  int64 // Unix seconds
	ExpiresAt int64 // Unix seconds
	Scopes    ScopeSet
	Flags     Flags
}

// Verified reports whether the claims were read from a token whose MAC
// verified under a known key, so that its id may be logged. Verify fills
// the claims in only then: on success, and with ErrExpired, ErrRevoked,
// ErrLoggedOut, ErrUnavailable and a revocation view's ErrKeyRetired. Every
// other error (malformed, unknown key, bad MAC, a key retired in the
// keyring, issued in the future) leaves them zero, and a verified token
// always has a non-zero Version (FormatVersion is checked first).
func (c *Claims) Verified() bool { return c.Version != 0 }

// Require returns nil when the claims hold scope s, else the FORBIDDEN error
// naming s. It does not allocate.
func (c *Claims) Require(s Scope) error {
	if c.Scopes.Has(s) {
		return nil
	}
	return ForbiddenError(s)
}

// Expires returns the expiry as a time.
func (c *Claims) Expires() time.Time { return time.Unix(c.ExpiresAt, 0).UTC() }

// Issued returns the issue time as a time.
func (c *Claims) Issued() time.Time { return time.Unix(c.IssuedAt, 0).UTC() }

// putPayload writes the claims into the first payloadLen bytes of b.
func (c *Claims) putPayload(b []byte) {
	b[offVersion] = c.Version
	binary.BigEndian.PutUint16(b[offKeyID:], c.KeyID)
	b[offType] = byte(c.Type)
	copy(b[offID:offID+12], c.ID[:])
	binary.BigEndian.PutUint64(b[offAccount:], c.Account)
	binary.BigEndian.PutUint32(b[offIssued:], uint32(c.IssuedAt))
	binary.BigEndian.PutUint32(b[offExpires:], uint32(c.ExpiresAt))
	binary.BigEndian.PutUint32(b[offScopes:], uint32(c.Scopes))
	b[offFlags] = byte(c.Flags)
}

// readPayload fills the claims from the first payloadLen bytes of b.
func (c *Claims) readPayload(b []byte) {
	c.Version = b[offVersion]
	c.KeyID = binary.BigEndian.Uint16(b[offKeyID:])
	c.Type = TokenType(b[offType])
	copy(c.ID[:], b[offID:offID+12])
	c.Account = binary.BigEndian.Uint64(b[offAccount:])
	c.IssuedAt = int64(binary.BigEndian.Uint32(b[offIssued:]))
	c.ExpiresAt = int64(binary.BigEndian.Uint32(b[offExpires:]))
	c.Scopes = ScopeSet(binary.BigEndian.Uint32(b[offScopes:]))
	c.Flags = Flags(b[offFlags])
}

// splitPrefix returns the type named by the token's prefix and the body after
// it, or ok=false when the token has none of the three prefixes.
func splitPrefix(tok []byte) (TokenType, []byte, bool) {
	if len(tok) < 8 || string(tok[:4]) != "hdb_" {
		return 0, nil, false
	}
	switch {
	case len(tok) >= 9 && string(tok[4:9]) == "live_":
		return TypeLive, tok[9:], true
	case len(tok) >= 9 && string(tok[4:9]) == "test_":
		return TypeTest, tok[9:], true
	case string(tok[4:8]) == "svc_":
		return TypeService, tok[8:], true
	}
	return 0, nil, false
}

// castagnoli is the CRC-32C table; Go computes CRC-32C with the CPU's crc32
// instruction where there is one.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the token's public checksum: CRC-32C of the bytes before it.
func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// LooksLikeToken reports whether s has a token's prefix, length, alphabet
// and a matching public checksum. It needs no key: it is what a secret
// scanner (or a client-side sanity check) can run.
func LooksLikeToken(s string) bool {
	_, body, ok := splitPrefix([]byte(s))
	if !ok {
		return false
	}
	var raw [binaryLen]byte
	if !decodeBase62(raw[:], body) {
		return false
	}
	return checksum(raw[:offCRC]) == binary.BigEndian.Uint32(raw[offCRC:])
}
