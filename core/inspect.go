package core

import (
	"encoding/binary"
	"errors"
)

// Unverified is what a token string says about itself when read without a
// key: its fields are the token's own claims, NOT checked by any MAC, so
// anyone can make a string that decodes to any values. It is for display
// (helios token inspect, helios auth status) and for secret scanners; only
// Verifier.Verify decides whether a token is genuine.
type Unverified struct {
	// Claims are the decoded fields. Claims.Verified reports true for a
	// decoded version 1 token: here that means only "well-formed".
	Claims Claims
	// PrefixType is the type the string's prefix names.
	PrefixType TokenType
	// ChecksumOK reports whether the public CRC-32C holds: the string is a
	// token as minted, not a typo or a look-alike (it proves nothing about
	// who made it).
	ChecksumOK bool
}

// ErrNotAToken is DecodeUnverified's answer for a string without a token's
// prefix, length or alphabet.
var ErrNotAToken = errors.New("not a HeliosDB token: want hdb_live_, hdb_test_ or hdb_svc_ followed by 79 characters of [0-9A-Za-z]")

// DecodeUnverified reads a token's fields and checks its public checksum,
// with no key. It fails only when s lacks a token's prefix, length or
// alphabet; a wrong checksum is reported in ChecksumOK, with the fields
// decoded all the same.
func DecodeUnverified(s string) (Unverified, error) {
	typ, body, ok := splitPrefix([]byte(s))
	if !ok {
		return Unverified{}, ErrNotAToken
	}
	var raw [binaryLen]byte
	if !decodeBase62(raw[:], body) {
		return Unverified{}, ErrNotAToken
	}
	u := Unverified{PrefixType: typ, ChecksumOK: checksum(raw[:offCRC]) == binary.BigEndian.Uint32(raw[offCRC:])}
	u.Claims.readPayload(raw[:])
	return u, nil
}
