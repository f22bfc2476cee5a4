package redis

import (
	"errors"
	"strconv"
)

// Parse errors. They are returned by ReadCommand and answered with a
// "-ERR Protocol error: …" reply followed by a close, as Redis does.
var (
	errMultibulkLen = errors.New("invalid multibulk length")
	errBulkLen      = errors.New("invalid bulk length")
	errUnbalanced   = errors.New("unbalanced quotes in request")
	errTooBig       = errors.New("command is larger than allowed")
)

// dollarError is the protocol error for an array element that is not a bulk
// string; Redis names the byte it found instead of '$'.
type dollarError struct{ got byte }

func (e dollarError) Error() string { return "expected '$', got '" + string(rune(e.got)) + "'" }

// maxArgs bounds the element count of one multibulk command. Redis allows
// 1024*1024; the size limit is normally the tighter bound.
const maxArgs = 1 << 20

// maxDigits bounds the digits of a length or count: 18 always fit an int64.
const maxDigits = 18

// RESP versions: a connection speaks RESP2 until HELLO 3 switches it to
// RESP3 (the Redis serialization protocol specification).
const (
	RESP2 = 2
	RESP3 = 3
)

// ReadCommand parses one command from the front of in, in place: the returned
// args are sub-slices of in (appended to argsbuf[:0], the caller's reusable
// slice), valid as long as in is. It accepts RESP multibulk commands
// ("*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n") and inline commands ("PING hi\r\n",
// split on spaces and tabs, with "double" or 'single' quoted arguments taken
// literally). n is the number of bytes the command occupied.
//
// An incomplete command is not an error: ReadCommand returns n == 0 and a nil
// error, and the caller waits for more bytes; when the last header of an
// incomplete command announced a bulk argument, need says how many bytes the
// command needs at least (through that argument's CRLF), and is 0 otherwise.
// A command that is (or declares that it will be) longer than max bytes is
// errTooBig. An empty command (a blank inline line, "*0\r\n") is consumed
// with len(args) == 0.
func ReadCommand(in []byte, argsbuf [][]byte, max int) (args [][]byte, n, need int, err error) {
	args = argsbuf[:0]
	if len(in) == 0 {
		return args, 0, 0, nil
	}
	if in[0] != '*' {
		args, n, err = readInline(in, args, max)
		return args, n, 0, err
	}
	count, i, ok, err := readNumber(in, 1)
	switch {
	case err != nil:
		return args, 0, 0, errMultibulkLen
	case !ok:
		if len(in) > max {
			return args, 0, 0, errTooBig
		}
		return args, 0, 0, nil
	case count > maxArgs:
		return args, 0, 0, errMultibulkLen
	case count*int64(len("$0\r\n\r\n")) > int64(max):
		return args, 0, 0, errTooBig
	}
	for k := int64(0); k < count; k++ {
		if i >= len(in) {
			return args, 0, 0, nil
		}
		if in[i] != '$' {
			return args, 0, 0, dollarError{in[i]}
		}
		size, j, ok, err := readNumber(in, i+1)
		if err != nil || (ok && size < 0) {
			return args, 0, 0, errBulkLen
		}
		if !ok {
			if len(in) > max {
				return args, 0, 0, errTooBig
			}
			return args, 0, 0, nil
		}
		if size > int64(max) || int64(j)+size+2 > int64(max) {
			return args, 0, 0, errTooBig // the command through this argument's CRLF
		}
		end := j + int(size)
		if end+2 > len(in) {
			return args, 0, end + 2, nil
		}
		if in[end] != '\r' || in[end+1] != '\n' {
			return args, 0, 0, errBulkLen
		}
		args = append(args, in[j:end])
		i = end + 2
	}
	return args, i, 0, nil
}

// readNumber reads a decimal integer starting at in[i] and ending in CRLF. It
// returns the value and the index after the CRLF; ok is false when the line
// is not complete yet.
func readNumber(in []byte, i int) (v int64, next int, ok bool, err error) {
	neg := false
	if i < len(in) && in[i] == '-' {
		neg = true
		i++
	}
	start := i
	for ; i < len(in); i++ {
		c := in[i]
		if c == '\r' {
			if i+1 >= len(in) {
				return 0, 0, false, nil
			}
			if in[i+1] != '\n' || i == start {
				return 0, 0, false, errMultibulkLen
			}
			if neg {
				v = -v
			}
			return v, i + 2, true, nil
		}
		if c < '0' || c > '9' || i-start >= maxDigits {
			return 0, 0, false, errMultibulkLen
		}
		v = v*10 + int64(c-'0')
	}
	return 0, 0, false, nil
}

// readInline parses an inline command line ending in "\n" (an optional "\r"
// before it is dropped).
func readInline(in []byte, args [][]byte, max int) ([][]byte, int, error) {
	end := -1
	for i, c := range in {
		if c == '\n' {
			end = i
			break
		}
		if i >= max {
			return args, 0, errTooBig
		}
	}
	if end < 0 {
		return args, 0, nil
	}
	line := in[:end]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	for i := 0; i < len(line); {
		c := line[i]
		if c == ' ' || c == '\t' {
			i++
			continue
		}
		if c == '"' || c == '\'' {
			j := i + 1
			for j < len(line) && line[j] != c {
				j++
			}
			if j >= len(line) || (j+1 < len(line) && line[j+1] != ' ' && line[j+1] != '\t') {
				return args, 0, errUnbalanced
			}
			args = append(args, line[i+1:j])
			i = j + 1
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		args = append(args, line[i:j])
		i = j
	}
	return args, end + 1, nil
}

// Reply encoders. Each appends one RESP value to dst and returns the result.

// AppendOK appends the simple string +OK.
func AppendOK(dst []byte) []byte { return append(dst, "+OK\r\n"...) }

// AppendSimple appends a simple string (s must not contain CR or LF).
func AppendSimple(dst []byte, s string) []byte {
	dst = append(dst, '+')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendError appends an error reply; msg starts with its code ("ERR …",
// "WRONGPASS …") and must not contain CR or LF.
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	dst = append(dst, msg...)
	return append(dst, '\r', '\n')
}

// AppendInt appends an integer reply.
func AppendInt(dst []byte, v int64) []byte {
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '\r', '\n')
}

// AppendBulk appends a bulk string.
func AppendBulk(dst, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends a bulk string.
func AppendBulkString(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendNull appends the null value: "_" in RESP3, the null bulk string in
// RESP2.
func AppendNull(dst []byte, proto int) []byte {
	if proto == RESP3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "$-1\r\n"...)
}

// AppendArray appends the header of an array of n elements.
func AppendArray(dst []byte, n int) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

// AppendMap appends the header of a map of n pairs: a RESP3 map, or in RESP2
// the flat array of 2n elements that Redis sends instead.
func AppendMap(dst []byte, n, proto int) []byte {
	if proto == RESP3 {
		dst = append(dst, '%')
		dst = strconv.AppendInt(dst, int64(n), 10)
		return append(dst, '\r', '\n')
	}
	return AppendArray(dst, 2*n)
}
