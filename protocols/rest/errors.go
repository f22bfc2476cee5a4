package rest

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/heliosdb/auth/netio"
	"github.com/valyala/fasthttp"
)

// WriteTokenError writes a token error as httpapi.WriteTokenError does:
// 401 AUTH_REQUIRED (invalid, revoked) or AUTH_EXPIRED with
// error="invalid_token", 403 FORBIDDEN with error="insufficient_scope" and
// the scope needed, 503 with Retry-After when revocation state is
// unavailable. Inside an authenticated handler the 403 is counted.
func WriteTokenError(ctx *fasthttp.RequestCtx, err error) { httpapi.WriteTokenError(ctx, err) }

// WriteError writes the seed's error body {"error":{"code":…,"message":…}}
// with status (httpapi.WriteError); detail, when set, is added as "detail"
// (what exactly was wrong and how to fix it).
func WriteError(ctx *fasthttp.RequestCtx, status int, code, message, detail string) {
	httpapi.WriteError(ctx, &httpapi.Error{Status: status, Code: code, Message: message, Detail: detail})
}

// ErrorHandler answers requests fasthttp could not parse (too large, bad
// framing) with the seed's error body (httpapi.ErrorHandler); a body over
// the server's bound counts as a message_size limit hit.
func ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		limitMetrics().Limit(netio.LimitMessageSize)
	}
	httpapi.ErrorHandler(ctx, err)
}

// limitMetrics counts REST's limit hits (it logs nothing).
var limitMetrics = sync.OnceValue(func() *netio.Metrics {
	return netio.NewMetrics(Protocol, slog.New(slog.DiscardHandler))
})
