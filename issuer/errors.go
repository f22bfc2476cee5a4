package issuer

import (
	"fmt"
	"net/http"

	"github.com/heliosdb/auth/core"
)

// APIError is a request the issuer refused, in the seed's error body:
// {"error":{"code":…,"message":…}}. Message says what to fix. A refused
// request changed nothing.
type APIError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, in seconds, is sent as Retry-After (429 only).
	RetryAfter int
	// Scope is the scope a 403 needs, sent as the scope attribute of its
	// WWW-Authenticate challenge (RFC 6750 §3); "" sends none.
	Scope string
}

// Error returns the code and the message.
func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// Error codes beyond the seed's AUTH_REQUIRED, AUTH_EXPIRED and FORBIDDEN.
const (
	CodeInvalidJSON        = "INVALID_JSON"
	CodeInvalidRequest     = "INVALID_REQUEST"
	CodeInvalidEmail       = "INVALID_EMAIL"
	CodeWeakPassword       = "WEAK_PASSWORD"
	CodeEmailTaken         = "EMAIL_TAKEN"
	CodeInvalidCredentials = "INVALID_CREDENTIALS"
	CodeRateLimited        = "RATE_LIMITED"
	CodeUnknownScope       = "UNKNOWN_SCOPE"
	CodeTokenNotFound      = "TOKEN_NOT_FOUND"
	CodeAlreadyRefreshed   = "ALREADY_REFRESHED"
	CodeBodyTooLarge       = "BODY_TOO_LARGE"
	CodeNotFound           = "NOT_FOUND"
	CodeMethodNotAllowed   = "METHOD_NOT_ALLOWED"
	CodeInternal           = "INTERNAL"
)

func badRequest(code, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) *APIError {
	return &APIError{Status: http.StatusForbidden, Code: core.CodeForbidden, Message: fmt.Sprintf(format, args...)}
}

// forbiddenFullAccess is a 403 whose challenge says the endpoint needs
// scope "*".
func forbiddenFullAccess(format string, args ...any) *APIError {
	e := forbidden(format, args...)
	e.Scope = "*"
	return e
}

func notFound(format string, args ...any) *APIError {
	return &APIError{Status: http.StatusNotFound, Code: CodeTokenNotFound, Message: fmt.Sprintf(format, args...)}
}

var errInternal = &APIError{Status: http.StatusInternalServerError, Code: CodeInternal,
	Message: "the issuer failed to complete the request; nothing was changed unless a retry shows otherwise"}
