package core

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/zeebo/blake3"
)

// MaxClockSkew is how far in the future a token's issued-at may lie (clock
// skew between the issuer and a node) before the token is refused.
const MaxClockSkew = 5 * time.Minute

// macCache keeps one keyed BLAKE3 hasher per key. A keyed hasher is ~10 KB to
// make; Reset keeps its key, so each is made once and reused. A macCache
// belongs to one goroutine (or one event loop) at a time.
type macCache struct {
	entries [4]macEntry // most keyrings hold a handful of keys
	extra   []macEntry
}

type macEntry struct {
	key *Key // the snapshot the hasher was made from; nil when empty
	h   *blake3.Hasher
}

// hasher returns a reset hasher keyed with k, making one on first use (or
// when k was replaced in the keyring).
func (m *macCache) hasher(k *Key) *blake3.Hasher {
	for i := range m.entries {
		e := &m.entries[i]
		if e.key == k {
			e.h.Reset()
			return e.h
		}
	}
	for i := range m.extra {
		if m.extra[i].key == k {
			m.extra[i].h.Reset()
			return m.extra[i].h
		}
	}
	h, err := blake3.NewKeyed(k.Secret[:])
	if err != nil {
		panic("core: blake3 keyed hasher: " + err.Error()) // BUG: the key size is fixed
	}
	// Reuse the slot of a key with the same id (a replaced snapshot) or an
	// empty one; otherwise grow.
	for i := range m.entries {
		e := &m.entries[i]
		if e.key == nil || e.key.ID == k.ID {
			*e = macEntry{key: k, h: h}
			return h
		}
	}
	for i := range m.extra {
		if m.extra[i].key.ID == k.ID {
			m.extra[i] = macEntry{key: k, h: h}
			return h
		}
	}
	m.extra = append(m.extra, macEntry{key: k, h: h})
	return h
}

// tag writes the 16-byte tag of payload under k into out.
func (m *macCache) tag(k *Key, payload []byte, out *[tagLen]byte) {
	h := m.hasher(k)
	_, _ = h.Write(payload)
	var sum [32]byte
	_, _ = h.Digest().Read(sum[:])
	copy(out[:], sum[:tagLen])
}

// Verifier checks tokens. It is not safe for concurrent use: make one per
// goroutine or event loop (each holds its own BLAKE3 hashers). The keyring and
// revocation view it reads may be shared.
type Verifier struct {
	ring *Keyring
	revs RevocationView
	macs macCache
	// raw holds the decoded token during Verify. It lives in the verifier,
	// not on the stack, because hash/crc32 calls through a function value
	// and would move a stack buffer to the heap.
	raw [binaryLen]byte
}

// NewVerifier returns a verifier over ring and revs (nil means nothing is
// revoked).
func NewVerifier(ring *Keyring, revs RevocationView) *Verifier {
	if revs == nil {
		revs = NoRevocations{}
	}
	return &Verifier{ring: ring, revs: revs}
}

// Verify checks token at time now and returns its claims. Every error is a
// preallocated *Error (see the Err* variables); Verify allocates nothing on
// success or failure once the verifier has met the token's key.
func (v *Verifier) Verify(token []byte, now time.Time) (Claims, error) {
	var c Claims
	if len(token) == 0 {
		return c, ErrMissing
	}
	// Whitespace is looked for only once the token has failed to parse, so
	// the common path scans the bytes once (in decodeBase62).
	typ, body, ok := splitPrefix(token)
	if !ok {
		if hasSpace(token) {
			return c, ErrWhitespace
		}
		return c, ErrPrefix
	}
	raw := &v.raw
	if !decodeBase62(raw[:], body) {
		if hasSpace(token) {
			return c, ErrWhitespace
		}
		return c, ErrMalformed
	}
	if checksum(raw[:offCRC]) != binary.BigEndian.Uint32(raw[offCRC:]) {
		return c, ErrChecksum
	}
	if raw[offVersion] != FormatVersion {
		return c, ErrVersion
	}
	if TokenType(raw[offType]) != typ {
		return c, ErrTypeMismatch
	}
	k := v.ring.Lookup(binary.BigEndian.Uint16(raw[offKeyID:]))
	if k == nil {
		return c, ErrUnknownKey
	}
	var want [tagLen]byte
	v.macs.tag(k, raw[:payloadLen], &want)
	if !tagEqual(&want, raw[offTag:offCRC]) {
		return c, ErrBadMAC
	}
	if k.Retired {
		return c, ErrKeyRetired
	}
	c.readPayload(raw[:])
	unix := now.Unix()
	if c.IssuedAt > unix+int64(MaxClockSkew/time.Second) {
		return Claims{}, ErrNotYetValid
	}
	if unix >= c.ExpiresAt {
		return c, ErrExpired
	}
	switch v.revs.Check(c.ID, c.Account, c.IssuedAt, c.KeyID) {
	case RevokedToken:
		return c, ErrRevoked
	case RevokedAccount:
		return c, ErrLoggedOut
	case RevokedKey:
		return c, ErrKeyRetired
	case RevocationUnavailable:
		return c, ErrUnavailable
	}
	return c, nil
}

// tagEqual compares a computed tag with the token's in constant time: two
// 64-bit XORs folded together, with no branch on the data.
func tagEqual(want *[tagLen]byte, got []byte) bool {
	_ = got[tagLen-1]
	x := binary.LittleEndian.Uint64(want[:8]) ^ binary.LittleEndian.Uint64(got[:8])
	y := binary.LittleEndian.Uint64(want[8:]) ^ binary.LittleEndian.Uint64(got[8:])
	return x|y == 0
}

// hasSpace reports whether b holds an ASCII space or control character
// (the guide's "ensure no whitespace in token").
func hasSpace(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// Minter makes tokens with a keyring's signing key. It is not safe for
// concurrent use; make one per goroutine or guard it.
type Minter struct {
	ring *Keyring
	macs macCache
}

// NewMinter returns a minter over ring.
func NewMinter(ring *Keyring) *Minter { return &Minter{ring: ring} }

// Mint appends the token string for c to dst. It fills c.Version and c.KeyID
// (the signing key) and returns the completed claims with the token.
// c.Type must be valid, c.ID should come from NewTokenID, and the times must
// fit in 32-bit Unix seconds.
func (m *Minter) Mint(dst []byte, c Claims) ([]byte, Claims, error) {
	if !c.Type.Valid() {
		return dst, c, errors.New("mint: invalid token type")
	}
	if c.IssuedAt < 0 || c.ExpiresAt <= c.IssuedAt || c.ExpiresAt > 1<<32-1 {
		return dst, c, errors.New("mint: expiry must follow issue time and fit in 32-bit Unix seconds")
	}
	if c.Scopes&^AllScopes != 0 {
		return dst, c, errors.New("mint: unknown scope bits")
	}
	k := m.ring.Signing()
	c.Version = FormatVersion
	c.KeyID = k.ID
	var raw [binaryLen]byte
	c.putPayload(raw[:])
	var tag [tagLen]byte
	m.macs.tag(k, raw[:payloadLen], &tag)
	copy(raw[offTag:], tag[:])
	binary.BigEndian.PutUint32(raw[offCRC:], checksum(raw[:offCRC]))
	dst = append(dst, c.Type.Prefix()...)
	return appendBase62(dst, raw[:]), c, nil
}
