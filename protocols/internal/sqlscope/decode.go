package sqlscope

import "unicode/utf8"

// decode returns the text a string literal (or quoted identifier) stands
// for under reading m: the content itself when it has no escapes (no
// allocation), else a decoded copy. false for literals the gateway does
// not decode (U&” strings, MySQL X” and B”).
func decode(t Token, m mode) ([]byte, bool) {
	if t.Kind != KindString && t.Kind != KindQuotedIdent && t.Kind != KindVar {
		return nil, false
	}
	switch t.esc {
	case escUnicode, escHex:
		return nil, false
	}
	in := t.Inner()
	if t.clean {
		return in, true
	}
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c >= 0x80 && m.cs != csNone:
			n := mbLen(m.cs, in[i:])
			out = append(out, in[i:i+n]...)
			i += n - 1
		case c == t.quote && i+1 < len(in) && in[i+1] == t.quote:
			out = append(out, c)
			i++
		case c == '\\' && t.esc == escBackslash && i+1 < len(in):
			i++
			if m.d == PostgreSQL {
				out, i = pgEscape(out, in, i)
			} else {
				out = myEscape(out, in[i])
			}
		default:
			out = append(out, c)
		}
	}
	return out, true
}

// pgEscape appends what the escape at in[i] (after a backslash) of an E”
// string stands for, and returns the index of its last byte.
func pgEscape(out, in []byte, i int) ([]byte, int) {
	switch c := in[i]; c {
	case 'b':
		return append(out, '\b'), i
	case 'f':
		return append(out, '\f'), i
	case 'n':
		return append(out, '\n'), i
	case 'r':
		return append(out, '\r'), i
	case 't':
		return append(out, '\t'), i
	case '0', '1', '2', '3', '4', '5', '6', '7':
		v, j := 0, i
		for j < len(in) && j < i+3 && in[j] >= '0' && in[j] <= '7' {
			v = v*8 + int(in[j]-'0')
			j++
		}
		return append(out, byte(v)), j - 1
	case 'x', 'u', 'U':
		n := 2
		switch c {
		case 'u':
			n = 4
		case 'U':
			n = 8
		}
		v, j := 0, i+1
		for j < len(in) && j <= i+n && isHex(in[j]) {
			v = v*16 + hexVal(in[j])
			j++
		}
		if j == i+1 || c != 'x' && j != i+1+n {
			return append(out, c), i // not an escape: the letter itself
		}
		if c == 'x' {
			return append(out, byte(v)), j - 1
		}
		return utf8.AppendRune(out, rune(v)), j - 1
	default:
		return append(out, c), i
	}
}

// myEscape appends what MySQL's escape \c stands for.
func myEscape(out []byte, c byte) []byte {
	switch c {
	case '0':
		return append(out, 0)
	case 'b':
		return append(out, '\b')
	case 'n':
		return append(out, '\n')
	case 'r':
		return append(out, '\r')
	case 't':
		return append(out, '\t')
	case 'Z':
		return append(out, 26)
	case '%', '_':
		return append(out, '\\', c)
	}
	return append(out, c)
}

func hexVal(c byte) int {
	if c <= '9' {
		return int(c - '0')
	}
	return int(c|0x20-'a') + 10
}
