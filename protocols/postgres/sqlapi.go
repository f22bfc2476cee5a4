package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// The REST API's POST /api/v1/sql runs here in proxy mode: through the same
// pools and roles as PostgreSQL clients, one request per server connection
// at a time, which is reset (DISCARD ALL, sent in the same round trip) and
// returned after it.

// SQLColumn is one result column: its name and its type's name ("int4").
type SQLColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// SQLResult is the last statement's result of a request.
type SQLResult struct {
	Columns  []SQLColumn `json:"columns"`
	Rows     [][]any     `json:"rows"`
	RowCount int         `json:"row_count"`
	// Command is the statement's command tag ("INSERT 0 2", "SELECT 3").
	Command string `json:"command"`
	// Truncated is true when the result had more rows than the limit.
	Truncated bool `json:"truncated,omitempty"`
}

// SQLOptions bound one request.
type SQLOptions struct {
	// MaxRows is how many rows are returned (default 1000); more set
	// Truncated.
	MaxRows int
}

// restVariant marks the server connections of REST requests in the pool:
// they are opened with UpstreamOptions.SQLTimeout as the session's
// statement_timeout (DISCARD ALL keeps it: it is the session default).
const restVariant = 1

// RunSQL runs query (with params bound to $1, $2, … when there are any,
// one statement then; otherwise every statement of it, the last one's
// result returned) as the role claims' scopes allow, on database. A server
// error is a *pgconn.PgError (its Code is the SQLSTATE). The caller has
// checked the statements' scopes (wall 1).
func (u *Upstream) RunSQL(ctx context.Context, c *core.Claims, database, query string, params []any, o SQLOptions) (*SQLResult, error) {
	if o.MaxRows <= 0 {
		o.MaxRows = 1000
	}
	role, err := upstream.RoleFor(c)
	if err != nil {
		return nil, err
	}
	key := upstream.Key{Role: role, Database: database, Variant: restVariant}
	sc, err := u.get(ctx, key, c.Type == core.TypeTest)
	if err != nil {
		return nil, err
	}
	msg, err := sqlMessages(query, params, o.MaxRows)
	if err != nil {
		u.pool.Put(key, sc)
		return nil, err
	}
	res, status, err := exchangeSQL(sc, msg, o, u.opts.SQLTimeout)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && isPermissionCode(pe.Code) {
		if scope, ok := scopeBeyond(role); ok {
			pe.Message += " (" + core.ForbiddenError(scope).Message + ")"
		}
	}
	if err != nil && !isServerError(err) || status != 'I' {
		u.pool.Discard(key, sc)
	} else {
		u.pool.Put(key, sc)
	}
	return res, err
}

func isServerError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

// sqlMessages encodes the request, then DISCARD ALL, in one write: the
// simple protocol without parameters (several statements allowed), the
// extended protocol with them (text values, types inferred by the server).
func sqlMessages(query string, params []any, maxRows int) ([]byte, error) {
	var b []byte
	if len(params) == 0 {
		b = appendQuery(b, query)
	} else {
		if len(params) > 65535 {
			return nil, errors.New("too many parameters: at most 65535")
		}
		b, at := begin(b, 'P')
		b = append(b, 0) // unnamed statement
		b = appendCString(b, query)
		b = appendInt16(b, 0) // no parameter types: the server infers them
		b = finish(b, at)
		b, at = begin(b, 'B')
		b = append(b, 0, 0)   // unnamed portal, unnamed statement
		b = appendInt16(b, 0) // every parameter in text
		b = appendInt16(b, int16(len(params)))
		for _, p := range params {
			text, null, err := paramText(p)
			if err != nil {
				return nil, err
			}
			if null {
				b = appendInt32(b, -1)
				continue
			}
			b = appendInt32(b, int32(len(text)))
			b = append(b, text...)
		}
		b = appendInt16(b, 0) // every result in text
		b = finish(b, at)
		b, at = begin(b, 'D')
		b = appendCString(append(b, 'P'), "")
		b = finish(b, at)
		b, at = begin(b, 'E')
		b = appendCString(b, "")
		b = appendInt32(b, int32(maxRows+1))
		b = finish(b, at)
		b = append(b, 'S', 0, 0, 0, 4)
		return appendQuery(b, "DISCARD ALL"), nil
	}
	return appendQuery(b, "DISCARD ALL"), nil
}

func appendQuery(b []byte, q string) []byte {
	b, at := begin(b, 'Q')
	return finish(appendCString(b, q), at)
}

// paramText is a JSON parameter's text form: numbers as written, strings as
// they are, booleans true/false, objects and arrays as JSON, null as NULL.
func paramText(p any) (string, bool, error) {
	switch v := p.(type) {
	case nil:
		return "", true, nil
	case string:
		return v, false, nil
	case bool:
		return strconv.FormatBool(v), false, nil
	case json.Number:
		return v.String(), false, nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), false, nil
	default:
		b, err := json.Marshal(v)
		return string(b), false, err
	}
}

// exchangeSQL writes msg and reads up to the second ReadyForQuery (the
// request's, then DISCARD ALL's), keeping the last statement's result.
func exchangeSQL(sc *serverConn, msg []byte, o SQLOptions, timeout time.Duration) (*SQLResult, byte, error) {
	_ = sc.SetDeadline(time.Now().Add(timeout + 5*time.Second))
	defer sc.SetDeadline(time.Time{})
	if _, err := sc.Write(msg); err != nil {
		return nil, 0, err
	}
	m := pgtype.NewMap()
	res := &SQLResult{Columns: []SQLColumn{}, Rows: [][]any{}}
	var oids []uint32
	var firstErr error
	var status byte
	hdr := make([]byte, 5)
	for ready := 0; ready < 2; {
		if _, err := io.ReadFull(sc, hdr); err != nil {
			return nil, 0, err
		}
		size := int(binary.BigEndian.Uint32(hdr[1:]))
		if size < 4 || size > maxServerMessage {
			return nil, 0, errors.New("upstream sent an invalid message length")
		}
		body := make([]byte, size-4)
		if _, err := io.ReadFull(sc, body); err != nil {
			return nil, 0, err
		}
		switch hdr[0] {
		case 'T':
			res.Columns, oids, res.Rows, res.Truncated = res.Columns[:0], oids[:0], [][]any{}, false
			r := reader{b: body}
			for n := r.int16(); n > 0 && r.err == nil; n-- {
				name := string(r.cstr())
				r.bytes(6) // table oid, column number
				oid := uint32(r.int32())
				r.bytes(8) // type size, modifier, format
				oids = append(oids, oid)
				res.Columns = append(res.Columns, SQLColumn{Name: name, Type: typeName(m, oid)})
			}
		case 'D':
			if len(res.Rows) >= o.MaxRows {
				res.Truncated = true
				continue
			}
			r := reader{b: body}
			r.int16() // the column count, as RowDescription said
			row := make([]any, 0, len(oids))
			for i := 0; i < len(oids) && r.err == nil; i++ {
				n := int(r.int32())
				if n < 0 {
					row = append(row, nil)
					continue
				}
				row = append(row, jsonValue(m, oids[i], r.bytes(n)))
			}
			res.Rows = append(res.Rows, row)
		case 'C':
			if ready == 0 {
				res.Command = string(trimNUL(body))
			}
		case 's':
			res.Truncated = true
		case 'E':
			if firstErr == nil && ready == 0 {
				firstErr = parseServerError(body)
			}
		case 'Z':
			ready++
			if len(body) == 1 {
				status = body[0]
			}
		}
	}
	res.RowCount = len(res.Rows)
	if firstErr != nil {
		return nil, status, firstErr
	}
	return res, status, nil
}

func trimNUL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == 0 {
		return b[:n-1]
	}
	return b
}

// typeName names a column type by its OID ("int4"; an OID pgx does not
// know, such as an extension's type, by its number).
func typeName(m *pgtype.Map, oid uint32) string {
	if t, ok := m.TypeForOID(oid); ok {
		return t.Name
	}
	return strconv.FormatUint(uint64(oid), 10)
}

// jsonValue turns a text-format value into what JSON shows best: numbers
// and booleans as themselves, json/jsonb as JSON, numeric as a string
// (exact), everything else as its text.
func jsonValue(m *pgtype.Map, oid uint32, text []byte) any {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		if n, err := strconv.ParseInt(string(text), 10, 64); err == nil {
			return n
		}
	case pgtype.Float4OID, pgtype.Float8OID:
		if f, err := strconv.ParseFloat(string(text), 64); err == nil && !isNaNOrInf(f) {
			return f
		}
	case pgtype.BoolOID:
		return string(text) == "t"
	case pgtype.JSONOID, pgtype.JSONBOID:
		if json.Valid(text) {
			return json.RawMessage(append([]byte(nil), text...))
		}
	}
	return string(text)
}

func isNaNOrInf(f float64) bool {
	return f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308
}
