package issuer

import (
	"fmt"
	"net/http"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/httpapi"
)

// APIError is a request the issuer refused, written by httpapi.WriteError
// in the seed's error body {"error":{"code":…,"message":…}}. Message says
// what to fix. A refused request changed nothing. A 403 carries
// WWW-Authenticate: Bearer realm="heliosdb", error="insufficient_scope",
// with scope="…" when Scope names the scope needed; a 429 carries
// Retry-After.
type APIError = httpapi.Error

// Error codes beyond the seed's AUTH_REQUIRED, AUTH_EXPIRED and FORBIDDEN.
const (
	CodeInvalidJSON        = httpapi.CodeInvalidJSON
	CodeInvalidRequest     = httpapi.CodeInvalidRequest
	CodeInvalidEmail       = "INVALID_EMAIL"
	CodeWeakPassword       = "WEAK_PASSWORD"
	CodeEmailTaken         = "EMAIL_TAKEN"
	CodeInvalidCredentials = "INVALID_CREDENTIALS"
	CodeRateLimited        = "RATE_LIMITED"
	CodeUnknownScope       = "UNKNOWN_SCOPE"
	CodeTokenNotFound      = "TOKEN_NOT_FOUND"
	CodeAlreadyRefreshed   = "ALREADY_REFRESHED"
	CodeBodyTooLarge       = httpapi.CodeBodyTooLarge
	CodeNotFound           = httpapi.CodeNotFound
	CodeMethodNotAllowed   = httpapi.CodeMethodNotAllowed
	CodeInternal           = httpapi.CodeInternal
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
