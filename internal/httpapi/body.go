package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// DecodeJSON decodes the request's JSON body into v (a pointer to a struct)
// strictly: one object, no unknown fields, at most limit bytes, UTF-8 text
// whose strings hold only characters (CheckText). An empty body is accepted
// when required is false. On failure it writes a 400 INVALID_JSON or
// INVALID_REQUEST, or a 413 BODY_TOO_LARGE, saying what to fix, and
// returns false.
func DecodeJSON(ctx *fasthttp.RequestCtx, v any, limit int, required bool) bool {
	body := ctx.PostBody()
	if len(body) > limit {
		WriteError(ctx, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
			Message: fmt.Sprintf("request body is %d bytes: at most %d", len(body), limit)})
		return false
	}
	if e := CheckText(body); e != nil {
		WriteError(ctx, e)
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if required {
			WriteError(ctx, badRequest(CodeInvalidJSON, "request body is empty: send a JSON object"))
			return false
		}
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("extra data after the JSON object")
	} else if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("extra data after the JSON object")
		}
	}
	if err != nil {
		WriteError(ctx, DecodeError(err, v))
		return false
	}
	return true
}

func badRequest(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

// CheckText refuses a body that is not UTF-8 (RFC 8259 §8.1) or whose
// strings escape a lone UTF-16 surrogate, \ud800-\udfff outside a
// high-low pair (RFC 7493 §2.1), with a 400 INVALID_JSON. encoding/json
// turns both into U+FFFD, so different passwords (or emails) would decode
// to the same string: a password of eight 0x80 bytes would match one of
// eight 0xff bytes. The message names the byte offset, never the bytes. It
// runs before decoding; on a body that is not JSON at all, it may answer
// first, which is as true.
func CheckText(body []byte) *Error {
	if !utf8.Valid(body) {
		at := 0
		for at < len(body) {
			r, n := utf8.DecodeRune(body[at:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			at += n
		}
		return badRequest(CodeInvalidJSON, "request body is not valid UTF-8 (byte %d): send JSON text encoded as UTF-8", at)
	}
	in := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case !in:
			in = c == '"'
		case c == '"':
			in = false
		case c == '\\':
			hi, ok := escapedUnit(body, i)
			if !ok || !utf16.IsSurrogate(rune(hi)) {
				i++ // the escaped character; a bad escape is the decoder's to report
				continue
			}
			if lo, ok := escapedUnit(body, i+6); ok && hi < 0xdc00 && lo >= 0xdc00 && lo <= 0xdfff {
				i += 11 // a valid pair: one character
				continue
			}
			return badRequest(CodeInvalidJSON, "a string escapes a lone UTF-16 surrogate (byte %d), which is no character: "+
				"escape a character as one \\uHHHH (four hex digits) or a surrogate pair, or send it as UTF-8", i)
		}
	}
	return nil
}

// escapedUnit parses the \uHHHH escape (four hex digits) at body[i:], if there is one.
func escapedUnit(body []byte, i int) (uint16, bool) {
	if i < 0 || i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
		return 0, false
	}
	var v uint16
	for _, c := range body[i+2 : i+6] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	return v, true
}

// DecodeError explains an encoding/json decoding error into v in terms of
// what to fix: 400 INVALID_JSON, or INVALID_REQUEST for an unknown field
// (naming the fields v accepts).
func DecodeError(err error, v any) *Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest(CodeInvalidJSON, "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ) && typ.Field != "":
		return badRequest(CodeInvalidJSON, "field %q must be a %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.As(err, &typ):
		return badRequest(CodeInvalidJSON, "the body must be a JSON object, not a JSON %s", typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest(CodeInvalidRequest, "%s is not accepted here: accepted fields are %s",
			strings.TrimPrefix(err.Error(), "json: "), FieldNames(v))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest(CodeInvalidJSON, "malformed JSON: the body ends early")
	}
	return badRequest(CodeInvalidJSON, "malformed JSON: %s", err.Error())
}

// FieldNames lists the JSON fields the struct v (or *v) accepts, in its
// order ("email, password"), or "none (send no body)".
func FieldNames(v any) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	if t != nil && t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch name {
			case "-":
				continue
			case "":
				name = f.Name
			}
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "none (send no body)"
	}
	return strings.Join(names, ", ")
}
