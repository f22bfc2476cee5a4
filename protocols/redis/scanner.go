package redis

import (
	"bytes"
	"errors"
)

// replyScanner follows the server's replies as they stream through the
// proxy's pump, a read at a time, without keeping them: it finds where
// each top-level value (a reply, or an unsolicited push) ends, so that the
// pump counts replies and writes the gateway's own replies only between
// two values, never inside one. It knows RESP2 and RESP3: simple strings,
// errors, integers, null, booleans, doubles, big numbers, bulk, blob error
// and verbatim strings, arrays, sets, maps, pushes and attributes (an
// attribute and the value it describes count as one value). Streamed
// strings and aggregates (a '?' length), which Redis never sends, are a
// framing error.
type replyScanner struct {
	// stack holds the elements each open aggregate still expects,
	// innermost last.
	stack []int64
	// line holds a header line split across reads.
	line []byte
	// bulk is how many bytes of a bulk payload and its CRLF are still to
	// come (0: none).
	bulk int64
	// top is the type of the current top-level value (0: between values).
	top byte
	// elems is the element count of a top-level array or push; want0 is
	// set while its first element's header has not been read; word holds
	// that first element when it is a short bulk string (capture: being
	// read), so that a RESP2 Pub/Sub message can be told from a reply.
	elems   int64
	want0   bool
	capture bool
	wordOK  bool
	wordN   int
	word    [16]byte
}

// maxReplyLine bounds one header line (a simple string or error reply is
// all on its line).
const maxReplyLine = 1 << 20

var errReplyFraming = errors.New("redis upstream: malformed reply")

// feed reads p until the current top-level value ends (done: n bytes of p
// complete it) or p ends inside it (n == len(p)).
func (s *replyScanner) feed(p []byte) (n int, done bool, err error) {
	i := 0
	for i < len(p) {
		if s.bulk > 0 {
			k := int64(len(p) - i)
			if k > s.bulk {
				k = s.bulk
			}
			if s.capture {
				for x := int64(0); x < k; x++ {
					if s.bulk-x > 2 && s.wordN < len(s.word) { // payload, not its CRLF
						s.word[s.wordN] = p[i+int(x)]
						s.wordN++
					}
				}
			}
			i += int(k)
			s.bulk -= k
			if s.bulk > 0 {
				return i, false, nil
			}
			if s.capture {
				s.capture, s.wordOK = false, true
			}
			if s.elementDone() {
				return i, true, nil
			}
			continue
		}
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			if len(s.line)+len(p)-i > maxReplyLine {
				return i, false, errReplyFraming
			}
			s.line = append(s.line, p[i:]...)
			return len(p), false, nil
		}
		ln := p[i : i+j+1]
		if len(s.line) > 0 {
			s.line = append(s.line, ln...)
			ln = s.line
		}
		i += j + 1
		done, err := s.header(ln)
		s.line = s.line[:0]
		if err != nil {
			return i, false, err
		}
		if done {
			return i, true, nil
		}
	}
	return i, false, nil
}

// header reads one header line (with its CRLF); done when it completes
// the top-level value.
func (s *replyScanner) header(ln []byte) (bool, error) {
	if len(ln) < 3 || ln[len(ln)-2] != '\r' {
		return false, errReplyFraming
	}
	t, body := ln[0], ln[1:len(ln)-2]
	first := s.top == 0
	if first {
		s.top, s.elems, s.wordOK, s.wordN = t, 0, false, 0
	}
	elem0 := s.want0
	s.want0 = false
	switch t {
	case '+', '-', ':', '_', '#', ',', '(':
		return s.elementDone(), nil
	case '$', '!', '=':
		n, ok := parseLength(body)
		if !ok {
			return false, errReplyFraming
		}
		if n == -1 && t == '$' {
			return s.elementDone(), nil
		}
		if n < 0 {
			return false, errReplyFraming
		}
		s.bulk = n + 2
		s.capture = elem0 && t == '$' && n <= int64(len(s.word))
		return false, nil
	case '*', '~', '>', '%', '|':
		n, ok := parseLength(body)
		if !ok {
			return false, errReplyFraming
		}
		if n == -1 && t == '*' {
			return s.elementDone(), nil
		}
		if n < 0 {
			return false, errReplyFraming
		}
		switch t {
		case '%':
			n *= 2
		case '|':
			n = 2*n + 1 // its pairs, then the value it describes
		}
		if first && (t == '*' || t == '>') {
			s.elems, s.want0 = n, n > 0
		}
		if n == 0 {
			return s.elementDone(), nil
		}
		if len(s.stack) >= 512 {
			return false, errReplyFraming
		}
		s.stack = append(s.stack, n)
		return false, nil
	}
	return false, errReplyFraming
}

// elementDone counts a finished value against the open aggregates; true
// when it was the top-level value's last.
func (s *replyScanner) elementDone() bool {
	for len(s.stack) > 0 {
		top := len(s.stack) - 1
		s.stack[top]--
		if s.stack[top] > 0 {
			return false
		}
		s.stack = s.stack[:top]
	}
	return true
}

// between reports whether the scanner is between two top-level values.
func (s *replyScanner) between() bool { return s.top == 0 && len(s.line) == 0 }

// next forgets the finished top-level value.
func (s *replyScanner) next() { s.top = 0 }

// pushed reports whether the finished value is not the reply to a command:
// a RESP3 push ('>': Pub/Sub messages and confirmations, CLIENT TRACKING
// invalidations), or, when resp2PubSub (a RESP2 connection that has
// subscribed), an array shaped as a Pub/Sub message or confirmation.
func (s *replyScanner) pushed(resp2PubSub bool) bool {
	if s.top == '>' {
		return true
	}
	if !resp2PubSub || s.top != '*' || s.elems < 3 || s.elems > 4 || !s.wordOK {
		return false
	}
	switch string(s.word[:s.wordN]) {
	case "message", "pmessage", "smessage", "subscribe", "unsubscribe", "psubscribe", "punsubscribe",
		"ssubscribe", "sunsubscribe":
		return true
	}
	return false
}

// parseLength parses a length or count ("-1" allowed).
func parseLength(b []byte) (int64, bool) {
	if len(b) == 2 && b[0] == '-' && b[1] == '1' {
		return -1, true
	}
	if len(b) == 0 || len(b) > maxDigits {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
