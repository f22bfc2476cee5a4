package redis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// This file is the gateway's own side of a Redis connection to the
// upstream: the commands it sends itself (AUTH as a role, ACL SETUSER,
// COMMAND, RESET) and the replies it reads back whole. The replies of the
// clients' commands never go through it: the pump streams those
// (scanner.go).

// serverError is an error reply from the upstream ("-WRONGPASS …").
type serverError string

func (e serverError) Error() string { return string(e) }

// code is the error reply's first word (WRONGPASS, NOPERM, ERR…).
func (e serverError) code() string {
	for i := 0; i < len(e); i++ {
		if e[i] == ' ' {
			return string(e[:i])
		}
	}
	return string(e)
}

// maxControlReply bounds one reply the gateway reads for itself (COMMAND's
// table is about 200 KB on Redis 7).
const maxControlReply = 16 << 20

// appendCommand appends args as a RESP multibulk command.
func appendCommand(dst []byte, args ...string) []byte {
	dst = AppendArray(dst, len(args))
	for _, a := range args {
		dst = AppendBulkString(dst, a)
	}
	return dst
}

// appendCommandBytes is appendCommand for arguments as byte slices (an
// inline command re-encoded before it is forwarded).
func appendCommandBytes(dst []byte, args [][]byte) []byte {
	dst = AppendArray(dst, len(args))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}

// readReply reads one whole reply: string (simple, bulk, verbatim, big
// number, double), int64, bool, nil, []any (array, set, push, and a map
// as its flat key/value list) or serverError (which is returned as the
// value, not as err: err is for I/O and framing). budget bounds the bytes
// read.
func readReply(r *bufio.Reader) (any, error) {
	budget := maxControlReply
	return readValue(r, &budget, 0)
}

func readValue(r *bufio.Reader, budget *int, depth int) (any, error) {
	if depth > 64 {
		return nil, errors.New("redis upstream: reply nested too deeply")
	}
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("redis upstream: reply line too long")
		}
		return nil, err
	}
	*budget -= len(line)
	if *budget < 0 {
		return nil, errors.New("redis upstream: reply too large")
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, errors.New("redis upstream: malformed reply")
	}
	t, body := line[0], string(line[1:len(line)-2])
	switch t {
	case '+', ',', '(':
		return body, nil
	case '-':
		return serverError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '_':
		return nil, nil
	case '#':
		return body == "t", nil
	case '$', '=', '!':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, errors.New("redis upstream: malformed bulk length")
		}
		if n == -1 {
			return nil, nil
		}
		*budget -= n + 2
		if *budget < 0 {
			return nil, errors.New("redis upstream: reply too large")
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		if t == '!' {
			return serverError(b[:n]), nil
		}
		if t == '=' && n >= 4 {
			return string(b[4:n]), nil // "txt:" or "mkd:"
		}
		return string(b[:n]), nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, errors.New("redis upstream: malformed aggregate length")
		}
		if n == -1 {
			return nil, nil
		}
		if t == '%' || t == '|' {
			n *= 2
		}
		if n > *budget {
			return nil, errors.New("redis upstream: reply too large")
		}
		v := make([]any, 0, n)
		for range n {
			e, err := readValue(r, budget, depth+1)
			if err != nil {
				return nil, err
			}
			v = append(v, e)
		}
		if t == '|' { // an attribute: the reply follows it
			return readValue(r, budget, depth)
		}
		return v, nil
	}
	return nil, fmt.Errorf("redis upstream: unknown reply type %q", t)
}

// replyError returns the server's error reply as an error, an I/O error as
// it is, and nil for any other reply.
func replyError(v any, err error) error {
	if err != nil {
		return err
	}
	if e, ok := v.(serverError); ok {
		return e
	}
	return nil
}
