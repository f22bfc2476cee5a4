package postgres

// The server side of a proxied session's start: the client's startup
// parameters applied on its server connection, and the gateway's own
// request/response exchanges before the pump runs.

import (
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// applyStartup sets the client's startup parameters (application_name,
// client_encoding, DateStyle, …) on the server connection, as a server would
// have taken them from the StartupMessage, and keeps the ParameterStatus
// values they change.
func (px *proxy) applyStartup(params [][2]string) error {
	// set_config takes the value as text, as the server takes a startup
	// parameter (SET would read "app,public" as one quoted name).
	return px.roundTrip(startupQuery(params), 10*time.Second)
}

// roundTrip sends msg (a Query) while no pump runs and reads up to its
// ReadyForQuery, keeping ParameterStatus values; an ErrorResponse is
// returned as a *pgconn.PgError.
func (px *proxy) roundTrip(msg []byte, timeout time.Duration) error {
	sc := px.sc
	_ = sc.SetDeadline(time.Now().Add(timeout))
	defer sc.SetDeadline(time.Time{})
	if _, err := sc.Write(msg); err != nil {
		return err
	}
	var firstErr error
	hdr := make([]byte, 5)
	for {
		if _, err := io.ReadFull(sc, hdr); err != nil {
			return err
		}
		size := int(binary.BigEndian.Uint32(hdr[1:]))
		if size < 4 || size > maxServerMessage {
			return errors.New("upstream sent an invalid message length")
		}
		body := make([]byte, size-4)
		if _, err := io.ReadFull(sc, body); err != nil {
			return err
		}
		switch hdr[0] {
		case 'S':
			sc.setParam(body)
		case 'E':
			if firstErr == nil {
				firstErr = parseServerError(body)
			}
		case 'Z':
			if len(body) == 1 {
				px.status = body[0]
			}
			return firstErr
		}
	}
}

// setParam records a ParameterStatus body (name NUL value NUL).
func (sc *serverConn) setParam(body []byte) {
	k, rest, ok := cstring(body)
	if !ok {
		return
	}
	v, _, ok := cstring(rest)
	if ok {
		sc.params[string(k)] = string(v)
	}
}

// parseServerError reads an ErrorResponse body into a *pgconn.PgError.
func parseServerError(body []byte) *pgconn.PgError {
	e := &pgconn.PgError{}
	for len(body) > 1 {
		f := body[0]
		v, rest, ok := cstring(body[1:])
		if !ok {
			break
		}
		switch f {
		case 'S':
			e.Severity = string(v)
		case 'C':
			e.Code = string(v)
		case 'M':
			e.Message = string(v)
		case 'D':
			e.Detail = string(v)
		case 'H':
			e.Hint = string(v)
		}
		body = rest
	}
	return e
}

// optionSettings reads a StartupMessage's options parameter (PGOPTIONS) as
// PostgreSQL does for the settings it can carry: "-c name=value",
// "-cname=value" and "--name=value", separated by spaces, a backslash
// escaping the next character. Any other server switch is refused: the
// gateway cannot pass it on.
func optionSettings(v string) ([][2]string, error) {
	var words []string
	var w []byte
	inWord := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v):
			i++
			w, inWord = append(w, v[i]), true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words, w, inWord = append(words, string(w)), w[:0], false
			}
		default:
			w, inWord = append(w, c), true
		}
	}
	if inWord {
		words = append(words, string(w))
	}
	var set [][2]string
	for i := 0; i < len(words); i++ {
		var kv string
		switch word := words[i]; {
		case word == "-c" && i+1 < len(words):
			i++
			kv = words[i]
		case len(word) > 2 && word[:2] == "-c":
			kv = word[2:]
		case len(word) > 2 && word[:2] == "--":
			kv = word[2:]
		default:
			return nil, errors.New("options " + strconv.Quote(word) + " cannot pass through the HeliosDB gateway: only -c name=value and --name=value settings can")
		}
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, errors.New("options: " + strconv.Quote(kv) + " is not name=value")
		}
		set = append(set, [2]string{strings.ReplaceAll(name, "-", "_"), value})
	}
	return set, nil
}
