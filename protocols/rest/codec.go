package rest

import "github.com/heliosdb/auth/core"

// hdrAuthorization is the canonical header name, for PeekCanonical (which,
// unlike Peek, does not copy the key).
var hdrAuthorization = []byte("Authorization")

// errNotBearer is an Authorization header with another scheme.
var errNotBearer = &core.Error{Kind: core.KindInvalid, Message: core.MsgInvalid,
	Detail: `use the header "Authorization: Bearer <token>"`}

// BearerToken returns the token of an Authorization header value
// "Bearer <token>" (the scheme is case-insensitive; RFC 6750 §2.1). The
// result is a sub-slice of h, valid as long as h is. It returns
// core.ErrMissing when h is empty and errNotBearer for another scheme.
// Whitespace inside or after the token is left for the verifier to report.
func BearerToken(h []byte) ([]byte, error) {
	if len(h) == 0 {
		return nil, core.ErrMissing
	}
	const scheme = "bearer"
	if len(h) < len(scheme)+1 || h[len(scheme)] != ' ' {
		return nil, errNotBearer
	}
	for i := 0; i < len(scheme); i++ {
		if h[i]|0x20 != scheme[i] {
			return nil, errNotBearer
		}
	}
	tok := h[len(scheme)+1:]
	for len(tok) > 0 && tok[0] == ' ' {
		tok = tok[1:]
	}
	if len(tok) == 0 {
		return nil, core.ErrMissing
	}
	return tok, nil
}
