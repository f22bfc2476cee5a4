package console

import (
	"github.com/valyala/fasthttp"
)

// crossOrigin returns why a state-changing request is not from the
// console's own origin, or "" when it is. Browsers send Sec-Fetch-Site
// (Chrome, Edge, Firefox, Safari 16.4+) and Origin on every form POST; a
// page on another port of the same host is same-site but not same-origin
// (SameSite cookies do not stop it), so both are checked against the
// origin, not the site. A request with neither comes from no browser and
// is refused too.
func (c *Console) crossOrigin(ctx *fasthttp.RequestCtx) string {
	site := ctx.Request.Header.Peek("Sec-Fetch-Site")
	if len(site) > 0 && string(site) != "same-origin" {
		return "Sec-Fetch-Site: " + string(site)
	}
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		if len(site) == 0 {
			return "neither Origin nor Sec-Fetch-Site"
		}
		return ""
	}
	if string(origin) != c.origin(ctx) {
		return "Origin is another origin"
	}
	return ""
}
