package core

// Kind classifies a token error so that each protocol can map it to its own
// codes (HTTP 401/403, SQLSTATE 28P01/42501, MySQL 1045, Redis WRONGPASS, …).
type Kind uint8

// Error kinds.
const (
	// KindInvalid: missing, malformed, forged, unknown or retired key, wrong
	// prefix. The guide's AUTH_REQUIRED.
	KindInvalid Kind = iota + 1
	// KindExpired: a genuine token past its expiry. The guide's AUTH_EXPIRED.
	KindExpired
	// KindRevoked: a genuine token revoked (by id, logout-all, or its key's
	// retirement). Reported as AUTH_REQUIRED with its own message.
	KindRevoked
	// KindForbidden: a valid token without the scope an operation needs.
	// The guide's FORBIDDEN.
	KindForbidden
	// KindUnavailable: the token may be fine, but this node cannot tell
	// whether it was revoked (it lost the issuer's feed for longer than its
	// bound), so it fails closed. Reported as AUTH_REQUIRED; HTTP answers 503.
	KindUnavailable
)

// The guide's error codes.
const (
	CodeAuthRequired = "AUTH_REQUIRED"
	CodeAuthExpired  = "AUTH_EXPIRED"
	CodeForbidden    = "FORBIDDEN"
)

// The guide's messages.
const (
	MsgInvalid = "Invalid or missing authentication token"
	MsgExpired = "Authentication token has expired"
	MsgRevoked = "Authentication token has been revoked"
)

// Error is a token error. Values are preallocated, so returning one costs
// nothing; compare with errors.Is against the Err* variables or switch on Kind.
type Error struct {
	Kind Kind
	// Message is the user-facing message in the guide's words.
	Message string
	// Detail says what exactly was wrong, for logs and for the user's fix
	// (it never contains the token).
	Detail string
}

// Error returns the message and its detail.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Message
	}
	return e.Message + " (" + e.Detail + ")"
}

// AppendError appends err's message and, in parentheses, its detail, as
// Error spells them, without allocating; an error that is not a token error
// appends the guide's generic message (its text may not be fit to show).
func AppendError(dst []byte, err error) []byte {
	te, ok := err.(*Error)
	if !ok {
		return append(dst, MsgInvalid...)
	}
	dst = append(dst, te.Message...)
	if te.Detail != "" {
		dst = append(dst, " ("...)
		dst = append(dst, te.Detail...)
		dst = append(dst, ')')
	}
	return dst
}

// Code returns the guide's error code for the error's kind.
func (e *Error) Code() string {
	switch e.Kind {
	case KindExpired:
		return CodeAuthExpired
	case KindForbidden:
		return CodeForbidden
	default:
		return CodeAuthRequired
	}
}

// Token errors returned by Verify.
var (
	ErrMissing      = &Error{KindInvalid, MsgInvalid, "no token was given"}
	ErrWhitespace   = &Error{KindInvalid, MsgInvalid, "the token has whitespace around or inside it; remove spaces and newlines"}
	ErrPrefix       = &Error{KindInvalid, MsgInvalid, "the token must start with hdb_live_, hdb_test_ or hdb_svc_"}
	ErrMalformed    = &Error{KindInvalid, MsgInvalid, "the token is truncated or has characters that are not base62"}
	ErrChecksum     = &Error{KindInvalid, MsgInvalid, "the token's checksum does not match: it was mistyped or truncated"}
	ErrVersion      = &Error{KindInvalid, MsgInvalid, "unsupported token format version"}
	ErrTypeMismatch = &Error{KindInvalid, MsgInvalid, "the token's prefix does not match its encoded type"}
	ErrUnknownKey   = &Error{KindInvalid, MsgInvalid, "the token was signed by an unknown key"}
	ErrBadMAC       = &Error{KindInvalid, MsgInvalid, "the token's signature is not valid"}
	ErrNotYetValid  = &Error{KindInvalid, MsgInvalid, "the token was issued in the future"}
	ErrExpired      = &Error{KindExpired, MsgExpired, ""}
	ErrRevoked      = &Error{KindRevoked, MsgRevoked, "the token was revoked"}
	ErrLoggedOut    = &Error{KindRevoked, MsgRevoked, "the account logged out of every session after this token was issued"}
	ErrKeyRetired   = &Error{KindRevoked, MsgRevoked, "the key that signed this token was retired"}
	// ErrUnavailable: the node's revocation data is too stale to trust.
	ErrUnavailable = &Error{KindUnavailable, "Token revocation status is unavailable: this node lost contact with the issuer; try again shortly", ""}
)

// forbidden holds one preallocated FORBIDDEN error per scope, so scope checks
// never allocate.
var forbidden = func() (t [numScopes]*Error) {
	for s := Scope(0); s < numScopes; s++ {
		t[s] = &Error{Kind: KindForbidden, Message: "Token does not have required scope: " + s.String()}
	}
	return t
}()

// ForbiddenError returns the FORBIDDEN error naming scope s, worded as the
// guide does: "Token does not have required scope: database:write".
func ForbiddenError(s Scope) *Error {
	if s < numScopes {
		return forbidden[s]
	}
	return &Error{Kind: KindForbidden, Message: "Token does not have required scope: " + s.String()}
}
