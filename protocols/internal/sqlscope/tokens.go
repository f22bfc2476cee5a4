package sqlscope

import "bytes"

// singleEsc is how a plain ” string is escaped in this reading.
func (l *Lexer) singleEsc() uint8 {
	if (l.m.d == PostgreSQL) == (l.m.bs == bsDefault) {
		return escDouble // PostgreSQL with standard_conforming_strings, MySQL with NO_BACKSLASH_ESCAPES
	}
	return escBackslash
}

// quoted reads a quoted token whose opening quote is at qi (start is where
// its prefix starts). modal: whether its escaping depends on a session
// setting.
func (l *Lexer) quoted(start, qi int, kind Kind, esc uint8, modal bool) Token {
	q := l.q
	quote := q[qi]
	clean := true
	for j := qi + 1; j < len(q); {
		c := q[j]
		if c >= 0x80 && l.m.cs != csNone {
			j += mbLen(l.m.cs, q[j:])
			continue
		}
		if c == '\\' || c == '`' {
			l.multibyteCheck(j)
		}
		switch c {
		case quote:
			if esc != escRaw && j+1 < len(q) && q[j+1] == quote {
				clean = false
				j += 2
				continue
			}
			l.pos = j + 1
			return Token{Kind: kind, Start: start, Text: q[start : j+1], pre: int32(qi - start + 1), post: 1,
				esc: esc, clean: clean, quote: quote, inExec: l.exec}
		case '\\':
			if modal {
				l.trig |= trigBackslash
			}
			if esc == escBackslash {
				clean = false
				j += 2
				continue
			}
		case 0:
			if l.m.d == PostgreSQL {
				return l.fail(j)
			}
		}
		j++
	}
	return l.fail(start)
}

// multibyteCheck notes a \ or ` at j right after a byte that could lead a
// multibyte character in GBK, Big5 or Shift_JIS.
func (l *Lexer) multibyteCheck(j int) {
	if l.m.cs == csNone && j > 0 && l.q[j-1] >= 0x81 && l.q[j-1] <= 0xfe {
		l.trig |= trigMultibyte
	}
}

// prefixed reads a string with a one- or two-letter prefix: PostgreSQL
// E”, B”, X”, N”, U&” and U&""; MySQL X”, B” and N”.
func (l *Lexer) prefixed(i int) (Token, bool) {
	q := l.q
	if i+1 >= len(q) {
		return Token{}, false
	}
	c, n := q[i]|0x20, q[i+1]
	if l.m.d == PostgreSQL {
		switch {
		case c == 'e' && n == '\'':
			return l.quoted(i, i+1, KindString, escBackslash, false), true
		case (c == 'b' || c == 'x') && n == '\'':
			return l.quoted(i, i+1, KindString, escRaw, false), true
		case c == 'n' && n == '\'':
			return l.quoted(i, i+1, KindString, l.singleEsc(), true), true
		case c == 'u' && n == '&' && i+2 < len(q) && q[i+2] == '\'':
			t := l.quoted(i, i+2, KindString, escDouble, false)
			t.esc = escUnicode
			return t, true
		case c == 'u' && n == '&' && i+2 < len(q) && q[i+2] == '"':
			t := l.quoted(i, i+2, KindQuotedIdent, escDouble, false)
			t.esc = escUnicode // its name is not what it spells: the classifier refuses one with escapes
			return t, true
		}
		return Token{}, false
	}
	switch {
	case (c == 'x' || c == 'b') && n == '\'':
		// MySQL reads hexadecimal or binary digits and then needs the
		// closing quote at once; anything else is a syntax error.
		j := i + 2
		for j < len(q) && (isHex(q[j]) && c == 'x' || (q[j] == '0' || q[j] == '1') && c == 'b') {
			j++
		}
		if j >= len(q) || q[j] != '\'' {
			return l.fail(i), true
		}
		l.pos = j + 1
		return Token{Kind: KindString, Start: i, Text: q[i : j+1], pre: 2, post: 1, esc: escHex, clean: true, quote: '\'', inExec: l.exec}, true
	case c == 'n' && n == '\'':
		return l.quoted(i, i+1, KindString, l.singleEsc(), true), true
	}
	return Token{}, false
}

// dollar reads a PostgreSQL $n parameter, $tag$ … $tag$ string, or a lone $.
func (l *Lexer) dollar(i int) Token {
	q := l.q
	j := i + 1
	if j < len(q) && isDigit(q[j]) {
		for j < len(q) && isDigit(q[j]) {
			j++
		}
		l.pos = j
		return Token{Kind: KindParam, Start: i, Text: q[i:j]}
	}
	for j < len(q) && (isIdentStart(q[j], true) || isDigit(q[j])) {
		j++
	}
	if j < len(q) && q[j] == '$' {
		tag := q[i : j+1]
		k := bytes.Index(q[j+1:], tag)
		if k < 0 {
			return l.fail(i)
		}
		end := j + 1 + k + len(tag)
		l.pos = end
		return Token{Kind: KindString, Start: i, Text: q[i:end], pre: int32(len(tag)), post: int32(len(tag)),
			esc: escRaw, clean: true, quote: '$'}
	}
	l.pos = i + 1
	return Token{Kind: KindPunct, Start: i, Text: q[i : i+1]}
}

// variable reads a MySQL @user_var, @'quoted', @@system_var or
// @@global.system_var; a lone @ is punctuation ('user'@'host').
func (l *Lexer) variable(i int) Token {
	q := l.q
	j := i + 1
	if j < len(q) && q[j] == '@' {
		j++
	}
	if j < len(q) && (q[j] == '\'' || q[j] == '"' || q[j] == '`') {
		esc, modal := uint8(escDouble), false
		switch {
		case q[j] == '\'':
			esc, modal = l.singleEsc(), true
		case q[j] == '"' && l.m.bs == bsDefault:
			esc, modal = escBackslash, true
		}
		return l.quoted(i, j, KindVar, esc, modal)
	}
	k := l.wordEnd(j, true)
	if k == i+1 {
		l.pos = k
		return Token{Kind: KindPunct, Start: i, Text: q[i:k], inExec: l.exec}
	}
	l.pos = k
	return Token{Kind: KindVar, Start: i, Text: q[i:k], inExec: l.exec}
}

// number reads a numeric literal. PostgreSQL: digits, a fraction and an
// exponent only when digits follow (so 1e'…' is 1 and an E” string, as
// PostgreSQL 14 reads it). MySQL: anything identifier-like that starts
// with a digit (1abc is an identifier there).
func (l *Lexer) number(i int) Token {
	q := l.q
	j := i
	if l.m.d == MySQL {
		for {
			j = l.wordEnd(j, false)
			if j+1 < len(q) && q[j] == '.' && isDigit(q[j+1]) {
				j++
				continue
			}
			break
		}
	} else {
		for j < len(q) && isDigit(q[j]) {
			j++
		}
		if j+1 < len(q) && q[j] == '.' && isDigit(q[j+1]) {
			j++
			for j < len(q) && isDigit(q[j]) {
				j++
			}
		}
		if j+1 < len(q) && (q[j]|0x20) == 'e' {
			k := j + 1
			if q[k] == '+' || q[k] == '-' {
				k++
			}
			if k < len(q) && isDigit(q[k]) {
				j = k
				for j < len(q) && isDigit(q[j]) {
					j++
				}
			}
		}
	}
	l.pos = j
	return Token{Kind: KindNumber, Start: i, Text: q[i:j], inExec: l.exec}
}

// wordEnd returns where the identifier characters from j end (dots: '.'
// counts as one, for MySQL variables). In a multibyte reading a lead byte
// takes its trail byte along, whatever that byte is.
func (l *Lexer) wordEnd(j int, dots bool) int {
	q := l.q
	pg := l.m.d == PostgreSQL
	for j < len(q) {
		c := q[j]
		if c < 0x80 && identCont[c] {
			j++
			continue
		}
		switch {
		case c >= 0x80:
			if l.m.cs != csNone {
				j += mbLen(l.m.cs, q[j:])
			} else {
				j++
			}
			continue
		case c == '$' && !pg, dots && c == '.':
			j++
			continue
		case c == '`' || c == '\\':
			l.multibyteCheck(j)
		}
		break
	}
	return j
}

// identCont: ASCII bytes that continue an identifier in both dialects.
var identCont = func() (t [0x80]bool) {
	for c := 0; c < 0x80; c++ {
		t[c] = c == '_' || c == '$' || c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z'
	}
	return t
}()

// mbLen returns the length of the character at b in character set cs: 2
// (4 for GB18030's four-byte form) for a lead byte followed by a valid
// trail byte, else 1.
func mbLen(cs uint8, b []byte) int {
	if len(b) < 2 {
		return 1
	}
	c, t := b[0], b[1]
	switch cs {
	case csGBK:
		if c >= 0x81 && c <= 0xfe {
			if t >= 0x40 && t <= 0x7e || t >= 0x80 && t <= 0xfe {
				return 2
			}
			if t >= 0x30 && t <= 0x39 && len(b) >= 4 && b[2] >= 0x81 && b[2] <= 0xfe && b[3] >= 0x30 && b[3] <= 0x39 {
				return 4
			}
		}
	case csBig5:
		if c >= 0xa1 && c <= 0xf9 && (t >= 0x40 && t <= 0x7e || t >= 0xa1 && t <= 0xfe) {
			return 2
		}
	case csSJIS:
		if (c >= 0x81 && c <= 0x9f || c >= 0xe0 && c <= 0xfc) && (t >= 0x40 && t <= 0x7e || t >= 0x80 && t <= 0xfc) {
			return 2
		}
	}
	return 1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'f' }

// isIdentStart: a letter, _, a byte of a multibyte character, and in MySQL $.
func isIdentStart(c byte, pg bool) bool {
	return c == '_' || c|0x20 >= 'a' && c|0x20 <= 'z' || c >= 0x80 || c == '$' && !pg
}
