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

// leading10 returns the value of the first 10 digits of an 11-digit block
// (< 62^10, so it cannot overflow) and the OR of their table entries. The
// digits are combined in pairs with independent multiplies rather than one
// long dependent chain, which halves the decoder's latency.
func leading10(s []byte) (uint64, byte) {
	_ = s[9]
	d0, d1, d2, d3, d4 := base62Rev[s[0]], base62Rev[s[1]], base62Rev[s[2]], base62Rev[s[3]], base62Rev[s[4]]
	d5, d6, d7, d8, d9 := base62Rev[s[5]], base62Rev[s[6]], base62Rev[s[7]], base62Rev[s[8]], base62Rev[s[9]]
	bad := d0 | d1 | d2 | d3 | d4 | d5 | d6 | d7 | d8 | d9
	p0 := uint64(d0)*62 + uint64(d1)
	p1 := uint64(d2)*62 + uint64(d3)
	p2 := uint64(d4)*62 + uint64(d5)
	p3 := uint64(d6)*62 + uint64(d7)
	p4 := uint64(d8)*62 + uint64(d9)
	return p0*p62x8 + p1*p62x6 + p2*p62x4 + p3*p62x2 + p4, bad
}
