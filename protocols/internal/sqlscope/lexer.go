package sqlscope

import "bytes"

// Dialect selects the lexical and statement rules of one SQL family.
type Dialect uint8

const (
	// PostgreSQL is PostgreSQL's dialect: $tag$ dollar quotes, E'' strings
	// with backslash escapes, '' strings with '' doubling, "identifiers",
	// nested /* */ comments and -- comments. The REST SQL endpoint speaks it.
	PostgreSQL Dialect = iota
	// MySQL is MySQL's and MariaDB's dialect: `identifiers`, '' and ""
	// strings with backslash escapes, # and "-- " comments, and /*! … */
	// executable comments whose body is code.
	MySQL
)

// Kind is what a token is.
type Kind uint8

// Token kinds.
const (
	KindEOF         Kind = iota // the end of the text
	KindWord                    // an unquoted identifier or keyword
	KindQuotedIdent             // "ident" (PostgreSQL, MySQL ANSI_QUOTES) or `ident` (MySQL)
	KindString                  // a string literal of any form, prefix and quotes included
	KindNumber                  // a numeric literal (MySQL: also identifiers that start with a digit)
	KindParam                   // $1 (PostgreSQL)
	KindVar                     // @name, @@name, @@global.name (MySQL)
	KindPunct                   // one byte of anything else: ( ) ; , . = and operators
	KindError                   // text the lexer cannot read: an unterminated quote or comment, a NUL byte
)

// Token is one lexical token. Text points into the lexed text, so a token
// lives as long as that text does.
type Token struct {
	Kind  Kind
	Start int    // offset of Text in the lexed text
	Text  []byte // the token as written, quotes and prefixes included

	pre, post int32 // KindString, KindQuotedIdent, quoted KindVar: bytes around the content
	esc       uint8 // how the content is escaped (esc*)
	clean     bool  // the content has no escapes or doubled quotes: it is Text[pre:len-post]
	quote     byte  // the quote character
	inExec    bool  // MySQL: the token is inside a /*! … */ comment
}

// Content escapes.
const (
	escRaw       = iota // no escapes, no doubling (PostgreSQL B'' and X'', dollar quotes)
	escDouble           // the quote doubled stands for itself
	escBackslash        // doubling and backslash escapes
	escUnicode          // PostgreSQL U&'': the gateway does not decode these
	escHex              // MySQL X'' and B'': not text
)

// Inner returns the token's content without its quotes or prefix, as
// written (escapes are not decoded); for other tokens, Text.
func (t Token) Inner() []byte {
	if t.Kind == KindString || t.Kind == KindQuotedIdent || (t.Kind == KindVar && t.post > 0) {
		return t.Text[t.pre : len(t.Text)-int(t.post)]
	}
	return t.Text
}

// Is reports whether t is the unquoted word w (w in lower case; ASCII case
// is ignored).
func (t Token) Is(w string) bool {
	if t.Kind != KindWord || len(t.Text) != len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := t.Text[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// mode is one reading of the text: the session settings that change how
// quotes and comments delimit tokens. The zero mode is the servers'
// defaults.
type mode struct {
	d   Dialect
	bs  uint8 // bsDefault, bsAlt1, bsAlt2
	cmt bool  // MySQL: versioned executable comments (/*!50000 …*/, /*M! …*/) are comments
	cs  uint8 // a client character set whose multibyte characters can end in \ or `
}

// Backslash readings.
const (
	bsDefault = 0 // PostgreSQL: standard_conforming_strings on; MySQL: \ escapes in '' and ""
	bsAlt1    = 1 // PostgreSQL: standard_conforming_strings off (\ escapes in '' too); MySQL: ANSI_QUOTES ("" is an identifier)
	bsAlt2    = 2 // MySQL: NO_BACKSLASH_ESCAPES
)

// Multibyte client character sets whose second byte can be \ (0x5c) or `
// (0x60): a byte-wise lexer would take that byte for an escape or a quote.
const (
	csNone = iota
	csGBK  // GBK, GB18030, CP936
	csBig5 // Big5
	csSJIS // Shift_JIS, CP932
	numCS
)

// Triggers: what the default reading saw that another reading could read
// differently.
const (
	trigBackslash = 1 << iota // a \ inside a string whose escaping is a session setting
	trigVersioned             // a MySQL versioned or MariaDB-only executable comment
	trigMultibyte             // a byte that may lead a multibyte character, right before \ or `
)

// Lexer reads tokens from SQL text without copying it. The zero value is
// not usable; NewLexer makes one. A Lexer is a small value: copying it
// saves its position.
type Lexer struct {
	q       []byte
	pos     int
	m       mode
	exec    bool    // MySQL: inside /*! … */
	partial bool    // the text is one statement cut out of a longer one: no error for an open /*! at its end
	trig    uint8   // triggers seen
	err     Refusal // why the last KindError token was returned
}

// NewLexer returns a lexer over q under the dialect's default settings.
func NewLexer(d Dialect, q []byte) Lexer { return Lexer{q: q, m: mode{d: d}} }

// at returns the byte k past the current position, 0 past the end.
func (l *Lexer) at(k int) byte {
	if l.pos+k < len(l.q) {
		return l.q[l.pos+k]
	}
	return 0
}

// fail ends the text with an error token.
func (l *Lexer) fail(at int) Token {
	l.err = RefusedUnreadable
	l.pos = len(l.q)
	l.exec = false
	return Token{Kind: KindError, Start: at}
}

// from returns a lexer positioned at token t of the same text.
func (l *Lexer) from(t Token) Lexer {
	c := *l
	c.pos, c.exec, c.partial = t.Start, t.inExec, true
	return c
}

// Next returns the next token, skipping whitespace and comments. After the
// end it returns KindEOF; text it cannot read (an unterminated quote or
// comment, a NUL byte) is KindError once, and then KindEOF.
func (l *Lexer) Next() Token {
	q := l.q
	for l.pos < len(q) {
		c := q[l.pos]
		switch c {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			l.pos++
			continue
		case '-':
			if l.at(1) == '-' && (l.m.d == PostgreSQL || mysqlDashComment(l.at(2), l.pos+2 >= len(q))) {
				l.skipLine()
				continue
			}
		case '#':
			if l.m.d == MySQL {
				l.skipLine()
				continue
			}
		case '/':
			if l.at(1) == '*' {
				if !l.comment() {
					return l.fail(l.pos)
				}
				continue
			}
		case '*':
			if l.exec && l.at(1) == '/' {
				l.exec = false
				l.pos += 2
				continue
			}
		}
		return l.token()
	}
	if l.exec && !l.partial {
		l.exec = false
		return l.fail(len(q))
	}
	return Token{Kind: KindEOF, Start: len(q)}
}

// mysqlDashComment reports whether "--" followed by c starts a MySQL
// comment: it needs a space or control character (or the end) after it;
// otherwise it is two minus signs (1--1 is 2).
func mysqlDashComment(c byte, end bool) bool { return end || c <= ' ' || c == 0x7f }

// skipLine skips a line comment up to its newline (PostgreSQL: \n or \r;
// MySQL: \n). A NUL byte stops it too: it is refused as the next token.
func (l *Lexer) skipLine() {
	q := l.q
	i := l.pos
	for i < len(q) && q[i] != '\n' && q[i] != 0 && (q[i] != '\r' || l.m.d == MySQL) {
		i++
	}
	l.pos = i
}

// comment skips a /* */ comment (nested in PostgreSQL, up to the first */
// in MySQL) or enters a MySQL executable comment; false when it does not
// end.
func (l *Lexer) comment() bool {
	q := l.q
	if l.m.d == MySQL {
		if j, ok := l.execStart(); ok {
			if l.exec {
				return false // MySQL refuses a /*! inside a /*!
			}
			versioned := j < len(q) && isDigit(q[j]) || q[l.pos+2] == 'M'
			if versioned {
				l.trig |= trigVersioned
			}
			if !versioned || !l.m.cmt {
				for j < len(q) && isDigit(q[j]) {
					j++
				}
				l.exec = true
				l.pos = j
				return true
			}
		}
		k := bytes.Index(q[l.pos+2:], []byte("*/"))
		if k < 0 {
			return false
		}
		l.pos += 2 + k + 2
		return true
	}
	depth := 0
	for i := l.pos; i+1 < len(q); i++ {
		switch {
		case q[i] == '/' && q[i+1] == '*':
			depth++
			i++
		case q[i] == '*' && q[i+1] == '/':
			depth--
			i++
			if depth == 0 {
				l.pos = i + 1
				return true
			}
		}
	}
	return false
}

// execStart reports whether a MySQL /*! or MariaDB /*M! comment starts at
// the position, and where its body starts.
func (l *Lexer) execStart() (int, bool) {
	switch {
	case l.at(2) == '!':
		return l.pos + 3, true
	case l.at(2) == 'M' && l.at(3) == '!':
		return l.pos + 4, true
	}
	return 0, false
}

// token reads the token at the position (not whitespace or a comment).
func (l *Lexer) token() Token {
	q, i := l.q, l.pos
	c := q[i]
	pg := l.m.d == PostgreSQL
	switch {
	case isIdentStart(c, pg):
		if i+1 < len(q) && (q[i+1] == '\'' || q[i+1] == '&') {
			if t, ok := l.prefixed(i); ok {
				return t
			}
		}
		j := l.wordEnd(i+1, false)
		l.pos = j
		return Token{Kind: KindWord, Start: i, Text: q[i:j], inExec: l.exec}
	case isDigit(c):
		return l.number(i)
	case c == '\'':
		return l.quoted(i, i, KindString, l.singleEsc(), true)
	case c == '"' && pg:
		return l.quoted(i, i, KindQuotedIdent, escDouble, false)
	case c == '"':
		switch l.m.bs {
		case bsDefault:
			return l.quoted(i, i, KindString, escBackslash, true)
		case bsAlt1:
			return l.quoted(i, i, KindQuotedIdent, escDouble, false)
		}
		return l.quoted(i, i, KindString, escDouble, false)
	case c == '`' && !pg:
		return l.quoted(i, i, KindQuotedIdent, escDouble, false)
	case c == '$' && pg:
		return l.dollar(i)
	case c == '@' && !pg:
		return l.variable(i)
	case c == 0:
		return l.fail(i)
	}
	l.pos = i + 1
	return Token{Kind: KindPunct, Start: i, Text: q[i : i+1], inExec: l.exec}
}
