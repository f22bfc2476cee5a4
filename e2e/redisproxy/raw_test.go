package redisproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawConn is a RESP client that shows every reply as it came: a test of
// the bytes the gateway writes (replies in order, push messages, the
// gateway's own replies in their place) reads them with it.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// encode makes a RESP multibulk command.
func encode(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// send writes commands in one write (a pipeline).
func (r *rawConn) send(cmds ...[]string) {
	r.t.Helper()
	var b strings.Builder
	for _, c := range cmds {
		b.WriteString(encode(c...))
	}
	r.write(b.String())
}

func (r *rawConn) write(s string) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// read reads one reply and renders it compactly: +OK, -ERR …, :1, $v (a
// bulk string's value), _ (null), [a b] arrays, >[…] pushes, %{k v} maps.
func (r *rawConn) read() string {
	r.t.Helper()
	s, err := r.readTimeout(10 * time.Second)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return s
}

// readTimeout reads one reply within d.
func (r *rawConn) readTimeout(d time.Duration) (string, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	return r.value()
}

func (r *rawConn) value() (string, error) {
	line, err := r.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty line")
	}
	switch line[0] {
	case '+', '-', ':', ',', '#', '(':
		return line, nil
	case '_':
		return "_", nil
	case '$', '=', '!':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "_", nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r.br, b); err != nil {
			return "", err
		}
		return "$" + string(b[:n]), nil
	case '*', '>', '~', '%':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "_", nil
		}
		if line[0] == '%' {
			n *= 2
		}
		parts := make([]string, n)
		for i := range parts {
			if parts[i], err = r.value(); err != nil {
				return "", err
			}
		}
		open := map[byte]string{'*': "[", '>': ">[", '~': "~[", '%': "%{"}[line[0]]
		close := "]"
		if line[0] == '%' {
			close = "}"
		}
		return open + strings.Join(parts, " ") + close, nil
	}
	return "", fmt.Errorf("unknown reply %q", line)
}

// do sends one command and reads its reply.
func (r *rawConn) do(args ...string) string {
	r.t.Helper()
	r.send(args)
	return r.read()
}

// closed reports whether the server closed the connection (within d).
func (r *rawConn) closed(d time.Duration) bool {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	_, err := r.br.ReadByte()
	return err == io.EOF
}
