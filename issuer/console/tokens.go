package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer"
)

// tokenRow is one token of the list, with the guide's audit marks.
type tokenRow struct {
	issuer.TokenInfo
	Scopes      string
	Current     bool // the token behind this console session
	NeverUsed   bool
	ExpiresSoon bool
}

// tokensPage is the data of Settings → API Tokens.
type tokensPage struct {
	Tokens []tokenRow
}

// expiresSoon reports whether a token is near its end (the guide: "tokens
// near expiration — refresh them"): less than three days left, or less than
// a quarter of its lifetime when that is shorter (six hours of a 24-hour
// test token).
func expiresSoon(t issuer.TokenInfo, now time.Time) bool {
	left := t.ExpiresAt.Sub(now)
	return left < min(3*24*time.Hour, t.ExpiresAt.Sub(t.CreatedAt)/4)
}

// scopesText names a token's scopes for people.
func scopesText(scopes []string) string {
	if len(scopes) == 1 && scopes[0] == "*" {
		return "Full access (*)"
	}
	return strings.Join(scopes, ", ")
}

func (c *Console) tokensPage(ctx *fasthttp.RequestCtx, s *session) {
	list, err := c.svc.ListTokens(&s.claims)
	if err != nil {
		c.refuse(ctx, http.StatusInternalServerError, c.say(ctx, err, ""))
		return
	}
	now := c.opts.Now()
	p := &tokensPage{Tokens: make([]tokenRow, 0, len(list))}
	current := s.claims.ID.String()
	// Newest first: the token just created is at the top.
	for i := len(list) - 1; i >= 0; i-- {
		t := list[i]
		r := tokenRow{TokenInfo: t, Scopes: scopesText(t.Scopes), Current: t.ID == current}
		r.NeverUsed = t.LastUsed == nil && !r.Current
		r.ExpiresSoon = expiresSoon(t, now)
		p.Tokens = append(p.Tokens, r)
	}
	c.render(ctx, http.StatusOK, "tokens.html", s.view("API Tokens", "tokens", p))
}

// view is the layout's data for a signed-in page.
func (s *session) view(title, nav string, page any) *view {
	return &view{Title: title, Nav: nav, Email: s.email, CSRF: s.csrf, Flash: s.takeFlash(), Page: page}
}

// scopeDescriptions are the guide's, by scope.
var scopeDescriptions = map[string]string{
	"database:read": "Read from databases", "database:write": "Write to databases",
	"database:create": "Create new databases", "database:delete": "Delete databases",
	"branch:read": "Read branch information", "branch:create": "Create branches",
	"branch:merge": "Merge branches", "branch:delete": "Delete branches",
	"schema:read": "Read schema information", "schema:write": "Modify schema",
	"vector:read": "Vector search operations", "vector:write": "Insert vectors",
	"metrics:read": "Read usage metrics",
	"billing:read": "Read billing information", "billing:write": "Modify billing settings",
}

// scopeOption is one checkbox of the form.
type scopeOption struct {
	Name, Desc string
	Checked    bool
}

// scopeFamily is a family's wildcard and its scopes.
type scopeFamily struct {
	Wildcard scopeOption
	Scopes   []scopeOption
}

// typeOption is one token type of the form.
type typeOption struct {
	Value, Label, Desc string
	Checked            bool
}

// tokenForm is the data of Create token, as entered.
type tokenForm struct {
	Name, Type, Expires, AllowedIPs string
	Full                            bool
	Families                        []scopeFamily
	Types                           []typeOption
	MaxDays                         int
	Error                           string
	Errors                          map[string]string
}

// newTokenForm fills the form's choices from what was entered.
func (c *Console) newTokenForm(name, typ, expires, ips string, scopes []string) *tokenForm {
	lt := c.svc.Lifetimes()
	f := &tokenForm{Name: name, Type: typ, Expires: expires, AllowedIPs: ips, MaxDays: lt.MaxDays, Errors: map[string]string{}}
	if f.Type == "" {
		f.Type = "live"
	}
	checked := map[string]bool{}
	for _, n := range scopes {
		checked[n] = true
	}
	f.Full = checked["*"]
	var fam *scopeFamily
	for sc := core.Scope(0); int(sc) < core.NumScopes; sc++ {
		n := sc.String()
		family, _, _ := strings.Cut(n, ":")
		if fam == nil || fam.Wildcard.Name != family+":*" {
			f.Families = append(f.Families, scopeFamily{Wildcard: scopeOption{Name: family + ":*",
				Desc: "Every " + family + " scope", Checked: checked[family+":*"]}})
			fam = &f.Families[len(f.Families)-1]
		}
		fam.Scopes = append(fam.Scopes, scopeOption{Name: n, Desc: scopeDescriptions[n], Checked: checked[n]})
	}
	f.Types = []typeOption{
		{"live", "Live", fmt.Sprintf("Production access. Lasts %s unless you set an expiry (at most %d days).", days(lt.Live), lt.MaxDays), false},
		{"test", "Test", fmt.Sprintf("Development and testing: test databases only. Lasts at most %s.", days(lt.Test)), false},
		{"service", "Service", fmt.Sprintf("CI/CD and automation, needs no user session. Lasts %s unless you set an expiry (at most %d days).", days(lt.Service), lt.MaxDays), false},
	}
	for i := range f.Types {
		f.Types[i].Checked = f.Types[i].Value == f.Type
	}
	return f
}

// days words a lifetime in days ("7 days", "24 hours").
func days(d time.Duration) string {
	if d%(24*time.Hour) != 0 || d == 24*time.Hour {
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days"
}

func (c *Console) newTokenPage(ctx *fasthttp.RequestCtx, s *session) {
	f := c.newTokenForm("", "live", "", "", nil)
	c.render(ctx, http.StatusOK, "newtoken.html", s.view("Create token", "tokens", f))
}

// createToken checks the form field by field (so each error is shown beside
// its field), then creates the token with the issuer, which checks again.
func (c *Console) createToken(ctx *fasthttp.RequestCtx, s *session) {
	args := ctx.PostArgs()
	var scopes []string
	for _, v := range args.PeekMulti("scope") {
		scopes = append(scopes, string(v))
	}
	f := c.newTokenForm(string(args.Peek("name")), string(args.Peek("type")), strings.TrimSpace(string(args.Peek("expires_in_days"))),
		strings.TrimSpace(string(args.Peek("allowed_ips"))), scopes)
	req := c.checkTokenForm(f, scopes)
	if len(f.Errors) == 0 {
		tok, rec, err := c.svc.CreateToken(&s.claims, req)
		if err == nil {
			s.mu.Lock()
			s.created = &createdOnce{token: tok, info: rec.Info()}
			s.mu.Unlock()
			redirect(ctx, "/settings/tokens/created")
			return
		}
		msg := c.say(ctx, err, "")
		if field := fieldOf(err); field != "" {
			f.Errors[field] = msg
		} else {
			f.Error = msg
		}
	}
	c.render(ctx, errStatus(ctx), "newtoken.html", s.view("Create token", "tokens", f))
}

// checkTokenForm fills f.Errors for each field in error and returns the
// request the form asks for.
func (c *Console) checkTokenForm(f *tokenForm, scopes []string) *issuer.CreateTokenRequest {
	lt := c.svc.Lifetimes()
	req := &issuer.CreateTokenRequest{Name: strings.TrimSpace(f.Name), Type: f.Type}
	switch n := req.Name; {
	case n == "":
		f.Errors["name"] = "Give the token a name, such as ci-cd-pipeline or analytics-reader."
	case len(n) > issuer.MaxTokenNameLen:
		f.Errors["name"] = fmt.Sprintf("Use at most %d characters.", issuer.MaxTokenNameLen)
	case strings.IndexFunc(n, unicode.IsControl) >= 0:
		f.Errors["name"] = "Use printable characters only."
	}
	typ, err := core.ParseTokenType(f.Type)
	if err != nil || f.Type == "svc" {
		f.Errors["type"] = "Choose live, test or service."
	}
	if f.Full {
		req.Scopes = []string{"*"}
	} else {
		for _, n := range scopes {
			if _, err := core.ParseScope(n); err != nil {
				f.Errors["scopes"] = fmt.Sprintf("Unknown scope %q: choose scopes from the list.", n)
				break
			}
			req.Scopes = append(req.Scopes, n)
		}
	}
	if len(scopes) == 0 {
		f.Errors["scopes"] = "Choose at least one scope (Full access grants them all)."
	}
	if f.Expires != "" {
		n, err := strconv.Atoi(f.Expires)
		switch {
		case err != nil || n < 1:
			f.Errors["expires"] = "Enter a whole number of days (1 or more), or leave it empty for the type's default."
		case typ == core.TypeTest && time.Duration(n)*24*time.Hour > lt.Test:
			f.Errors["expires"] = fmt.Sprintf("Test tokens last at most %s: leave it empty, or choose a live or service token.", days(lt.Test))
		case n > lt.MaxDays:
			f.Errors["expires"] = fmt.Sprintf("Tokens last at most %d days.", lt.MaxDays)
		default:
			req.ExpiresInDays = &n
		}
	}
	if f.AllowedIPs != "" {
		req.AllowedIPs = strings.FieldsFunc(f.AllowedIPs, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		for _, a := range req.AllowedIPs {
			if _, err := issuer.ParseIPOrCIDR(a); err != nil || strings.Contains(a, "%") {
				f.Errors["allowed_ips"] = fmt.Sprintf("%q is not an IP address or network: write addresses such as 203.0.113.50 or networks such as 10.0.0.0/8.", a)
				break
			}
		}
		if len(req.AllowedIPs) > issuer.MaxAllowedIPs {
			f.Errors["allowed_ips"] = fmt.Sprintf("List at most %d addresses or networks.", issuer.MaxAllowedIPs)
		}
	}
	return req
}

// fieldOf is the form field an issuer refusal of a new token is about, ""
// for the form as a whole.
func fieldOf(err error) string {
	var ae *issuer.APIError
	if !errors.As(err, &ae) {
		return ""
	}
	m := strings.ToLower(ae.Message)
	switch {
	case strings.HasPrefix(m, "name"):
		return "name"
	case ae.Code == issuer.CodeUnknownScope, strings.Contains(m, "scope"):
		return "scopes"
	case strings.HasPrefix(m, "expires_in_days"), strings.HasPrefix(m, "test tokens live"):
		return "expires"
	case strings.HasPrefix(m, "allowed_ips"):
		return "allowed_ips"
	}
	return ""
}

// createdPage is the data of the page that shows a new token once.
type createdPage struct {
	Token   string
	Info    issuer.TokenInfo
	Scopes  string
	Connect *connectData
}

func (c *Console) createdPage(ctx *fasthttp.RequestCtx, s *session) {
	cr := s.takeCreated()
	if cr == nil {
		s.setFlash("A new token is shown only once, right after it is created. Create another if you did not copy it.")
		redirect(ctx, "/settings/tokens")
		return
	}
	db := ""
	if cr.info.Type == core.TypeTest.String() {
		db = firstTestDatabase(c.svc.ListDatabases(&s.claims))
	}
	p := &createdPage{Token: cr.token, Info: cr.info, Scopes: scopesText(cr.info.Scopes),
		Connect: c.connect(ctx, &s.claims, db, cr.info.Type == core.TypeTest.String())}
	c.render(ctx, http.StatusOK, "created.html", s.view("Token created", "tokens", p))
}

// confirmPage asks before an action that cannot be undone, for browsers
// that posted without the script's confirmation.
type confirmPage struct {
	Heading, Body, Action, Button string
	Fields                        map[string]string
	Cancel                        string
}

// confirmed reports whether the form says the user confirmed.
func confirmed(ctx *fasthttp.RequestCtx) bool {
	return string(ctx.PostArgs().Peek("confirmed")) == "yes"
}

func (c *Console) revokeToken(ctx *fasthttp.RequestCtx, s *session) {
	id := string(ctx.PostArgs().Peek("id"))
	name := id
	if list, err := c.svc.ListTokens(&s.claims); err == nil {
		for _, t := range list {
			if t.ID == id {
				name = t.Name
			}
		}
	}
	if !confirmed(ctx) {
		c.render(ctx, http.StatusOK, "confirm.html", s.view("Revoke token", "tokens", &confirmPage{
			Heading: "Revoke “" + name + "”?",
			Body:    "Every client using this token is refused from its next request, on every protocol. This cannot be undone.",
			Action:  "/settings/tokens/revoke", Button: "Revoke token", Fields: map[string]string{"id": id}, Cancel: "/settings/tokens"}))
		return
	}
	if _, err := c.svc.RevokeToken(&s.claims, id); err != nil {
		s.setFlash(c.say(ctx, err, ""))
		redirect(ctx, "/settings/tokens")
		return
	}
	if id == s.claims.ID.String() {
		c.sessions.drop(s)
		c.setCookie(ctx, sessionCookie, "", -1)
		redirect(ctx, signinURL("ended"))
		return
	}
	s.setFlash("Token “" + name + "” is revoked: clients using it are refused from now on.")
	redirect(ctx, "/settings/tokens")
}

func (c *Console) logoutAll(ctx *fasthttp.RequestCtx, s *session) {
	if !confirmed(ctx) {
		c.render(ctx, http.StatusOK, "confirm.html", s.view("Log out everywhere", "tokens", &confirmPage{
			Heading: "Log out everywhere?",
			Body: "Every token of your account is revoked — service tokens, CLI sessions and this console session included — " +
				"and open database connections using them are closed. You will need to sign in again.",
			Action: "/settings/logout-all", Button: "Log out everywhere", Cancel: "/settings/tokens"}))
		return
	}
	if _, err := c.svc.LogoutAll(&s.claims); err != nil {
		s.setFlash(c.say(ctx, err, ""))
		redirect(ctx, "/settings/tokens")
		return
	}
	c.sessions.drop(s)
	c.setCookie(ctx, sessionCookie, "", -1)
	redirect(ctx, signinURL("everywhere"))
}
