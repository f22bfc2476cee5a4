package core

import (
	"encoding/binary"
	"math/bits"
)

// base62 alphabet: digits, upper case, lower case.
const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// base62Rev maps an ASCII byte to its digit value, or 0xFF when it is not a
// base62 character.
var base62Rev = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xFF
	}
	for i := 0; i < len(base62Alphabet); i++ {
		t[base62Alphabet[i]] = byte(i)
	}
	return t
}()

// base62Width returns how many characters encode n bytes (n ≤ 8).
func base62Width(n int) int {
	switch n {
	case 8:
		return 11
	case 7:
		return 10
	case 6:
		return 9
	case 5:
		return 7
	case 4:
		return 6
	case 3:
		return 5
	case 2:
		return 3
	case 1:
		return 2
	}
	return 0
}

// base62EncodedLen returns the encoded length of n bytes.
func base62EncodedLen(n int) int {
	return n/8*11 + base62Width(n%8)
}

// appendBase62 appends the block-wise base62 encoding of src to dst.
func appendBase62(dst, src []byte) []byte {
	for len(src) > 0 {
		n := min(len(src), 8)
		var v uint64
		for _, b := range src[:n] {
			v = v<<8 | uint64(b)
		}
		w := base62Width(n)
		var digits [11]byte
		for i := w - 1; i >= 0; i-- {
			digits[i] = base62Alphabet[v%62]
			v /= 62
		}
		dst = append(dst, digits[:w]...)
		src = src[n:]
	}
	return dst
}

// decodeBase62 decodes the block-wise base62 text src into dst, whose length
// gives the number of bytes expected. It reports false when src has the wrong
// length, a character outside the alphabet, or a block whose value does not
// fit its byte width (non-canonical input). It is on the verification path:
// no division, one table lookup per character, one overflow check per block.
func decodeBase62(dst, src []byte) bool {
	if len(src) != base62EncodedLen(len(dst)) {
		return false
	}
	// Full 8-byte blocks: 11 characters each.
	for len(dst) >= 8 && len(src) >= 11 {
		v, bad := leading10(src)
		d := base62Rev[src[10]]
		// Only the last digit of a full block can carry past 64 bits.
		hi, lo := bits.Mul64(v, 62)
		lo, carry := bits.Add64(lo, uint64(d), 0)
		if (bad|d)&0x80 != 0 || hi|carry != 0 {
			return false
		}
		binary.BigEndian.PutUint64(dst, lo)
		dst, src = dst[8:], src[11:]
	}
	if len(dst) == 0 {
		return true
	}
	// The final short block.
	var v uint64
	var bad byte // digits are < 64; 0xFF (not in the alphabet) sets bit 7
	for _, c := range src {
		d := base62Rev[c]
		bad |= d
		v = v*62 + uint64(d)
	}
	if bad&0x80 != 0 || v>>(uint(len(dst))*8) != 0 {
		return false
	}
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte(v)
		v >>= 8
	}
	return true
}

// Powers of 62 used by leading10.
const (
	p62x2 = 62 * 62
	p62x4 = p62x2 * p62x2
	p62x6 = p62x4 * p62x2
	p62x8 = p62x4 * p62x4
)

// base62Pair maps two ASCII bytes (first<<8 | second) to their two-digit
// value d0*62+d1, or 0xFFFF when either is not a base62 character. Tokens only
// touch the 62×62 valid pairs, about 12 KB of the 128 KB table, which stays in
// the L1 cache; one lookup replaces two lookups and a multiply.
var base62Pair = func() *[1 << 16]uint16 {
	t := new([1 << 16]uint16)
	for i := range t {
		d0, d1 := base62Rev[i>>8], base62Rev[i&0xFF]
		if d0 == 0xFF || d1 == 0xFF {
			t[i] = 0xFFFF
		} else {
			t[i] = uint16(d0)*62 + uint16(d1)
		}
	}
	return t
}()

func pair(s []byte) uint16 { return base62Pair[uint16(s[0])<<8|uint16(s[1])] }

// leading10 returns the value of the first 10 digits of an 11-digit block
// (< 62^10, so it cannot overflow) and a byte whose bit 7 is set when any of
// them is not a base62 character. The digits are read in pairs and combined
// with independent multiplies rather than one long dependent chain.
func leading10(s []byte) (uint64, byte) {
	_ = s[9]
	p0, p1, p2, p3, p4 := pair(s[0:2]), pair(s[2:4]), pair(s[4:6]), pair(s[6:8]), pair(s[8:10])
	bad := byte((p0 | p1 | p2 | p3 | p4) >> 8)
	return uint64(p0)*p62x8 + uint64(p1)*p62x6 + uint64(p2)*p62x4 + uint64(p3)*p62x2 + uint64(p4), bad
}
