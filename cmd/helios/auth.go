package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/spf13/cobra"
)

// authCommand is `helios auth …`.
func (a *app) authCommand() *cobra.Command {
	c := &cobra.Command{Use: "auth", Short: "Sign up, log in, and manage your session token"}
	var email string
	signup := &cobra.Command{
		Use:   "signup",
		Short: "Create a HeliosDB account",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return a.signup(email) },
	}
	login := &cobra.Command{
		Use:   "login",
		Short: "Log in and save a session token in your config directory",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return a.login(email) },
	}
	for _, cmd := range []*cobra.Command{signup, login} {
		cmd.Flags().StringVar(&email, "email", "", "account email (prompted for when omitted on a terminal)")
	}
	var all bool
	logout := &cobra.Command{
		Use:   "logout",
		Short: "Invalidate the session token and forget it (--all: every token of the account)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return a.logout(all) },
	}
	logout.Flags().BoolVar(&all, "all", false, "log out everywhere: invalidate every token of the account")
	var minValid time.Duration
	tokenCmd := &cobra.Command{Use: "token", Short: "Print the current token (for export HELIOS_TOKEN=$(helios auth token))",
		Long: "Print the current token: HELIOS_TOKEN, or the one saved by helios auth login, refreshed first\n" +
			"when it has less than --min-valid left or is in the last quarter of its lifetime.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return a.printToken(minValid) }}
	tokenCmd.Flags().DurationVar(&minValid, "min-valid", time.Hour, "print a token valid for at least this long (refreshing the saved one when needed)")
	c.AddCommand(signup, login, logout,
		tokenCmd,
		&cobra.Command{Use: "status", Short: "Show who you are, the token's type, scopes, expiry and time left", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return a.status() }},
		&cobra.Command{Use: "refresh", Short: "Exchange the token for a new one before it expires", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return a.refresh() }},
	)
	return c
}

// signup creates an account (POST /v1/auth/signup).
func (a *app) signup(email string) error {
	email, pw, err := a.askCredentials(email, a.interactive())
	if err != nil {
		return err
	}
	cl, err := a.client("")
	if err != nil {
		return err
	}
	out, err := cl.do("POST", "/v1/auth/signup", "", map[string]string{"email": email, "password": pw})
	if err != nil {
		return err
	}
	if a.output == "json" {
		_, err = a.stdout.Write(out)
		return err
	}
	fmt.Fprintf(a.stdout, "Account created for %s.\nNext: helios auth login\n", email)
	return nil
}

// loginResponse is the body of POST /v1/auth/login and /v1/auth/refresh.
type loginResponse struct {
	Token     string    `json:"token"`
	TokenType string    `json:"token_type"`
	ExpiresAt time.Time `json:"expires_at"`
}

// cliTokenName is the name of the token helios auth login keeps: the
// guide's "CLI Token", with the machine's name so that logins from several
// machines tell apart in helios token list.
func cliTokenName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return "CLI Token (" + h + ")"
	}
	return "CLI Token"
}

// login logs in (POST /v1/auth/login), and with that session token creates
// the CLI's own full-access token named "CLI Token (<hostname>)" (POST
// /v1/auth/tokens: same type, scopes and lifetime) and logs the session
// token out, so the token list names what the CLI holds. The token saved
// by a previous login is logged out (a token may always revoke itself),
// so logging in again does not pile up tokens. The new token is saved
// (0600) before anything is revoked.
func (a *app) login(email string) error {
	email, pw, err := a.askCredentials(email, false)
	if err != nil {
		return err
	}
	cl, err := a.client("")
	if err != nil {
		return err
	}
	out, err := cl.do("POST", "/v1/auth/login", "", map[string]string{"email": email, "password": pw})
	if err != nil {
		return err
	}
	var r loginResponse
	if err := json.Unmarshal(out, &r); err != nil || r.Token == "" {
		return fmt.Errorf("unexpected login response from %s", cl.base)
	}
	tok, expires, name := r.Token, r.ExpiresAt, "login"
	var t tokenInfo
	cout, cerr := cl.do("POST", "/v1/auth/tokens", r.Token, map[string]any{"name": cliTokenName()})
	if cerr == nil && (json.Unmarshal(cout, &t) != nil || t.Token == "") {
		cerr = fmt.Errorf("unexpected response from %s", cl.base)
	}
	if cerr != nil {
		fmt.Fprintf(a.stderr, "Warning: could not create the CLI's own token (%s); keeping the login token.\n", restToCLI.Replace(cerr.Error()))
	} else {
		tok, expires, name = t.Token, t.ExpiresAt, t.Name
	}
	old, _ := loadCredentials()
	path, err := (&credentials{APIURL: cl.base, Email: email, Token: tok, ExpiresAt: expires}).save()
	if err != nil {
		return err
	}
	if tok != r.Token {
		if _, err := cl.do("POST", "/v1/auth/logout", r.Token, nil); err != nil {
			fmt.Fprintf(a.stderr, "Warning: could not log out the login's session token: %s\n", restToCLI.Replace(err.Error()))
		}
	}
	if old != nil && old.Token != "" && old.Token != tok {
		a.retire(old)
	}
	if a.output == "json" {
		// The API's response for the saved token: the created token's
		// record, or the login's when creating it failed.
		if cerr == nil {
			out = cout
		}
		_, err = a.stdout.Write(out)
		return err
	}
	fmt.Fprintf(a.stdout, "Logged in as %s. Token %q saved in %s; it expires %s.\n", email, name, path, when(expires))
	fmt.Fprintln(a.stdout, "Use it: export HELIOS_TOKEN=$(helios auth token)")
	return nil
}

// retire logs out the token a previous login saved, on the API it was
// saved for. An expired or already revoked token needs nothing; any other
// failure is a warning naming the token's id.
func (a *app) retire(old *credentials) {
	if exp, ok := tokenExpiry(old.Token, old); ok && !time.Now().Before(exp) {
		return
	}
	cl, err := a.client(old.APIURL)
	if err == nil {
		_, err = cl.do("POST", "/v1/auth/logout", old.Token, nil)
	}
	if ae, ok := err.(*apiError); ok && (ae.Code == "AUTH_REQUIRED" || ae.Code == "AUTH_EXPIRED") {
		return
	}
	if err != nil {
		id := "the previous token"
		if u, derr := core.DecodeUnverified(old.Token); derr == nil {
			id = u.Claims.ID.String()
		}
		fmt.Fprintf(a.stderr, "Warning: could not log out %s saved by the previous login: %s (revoke it with helios token revoke)\n", id, restToCLI.Replace(err.Error()))
	}
}

// printToken prints the current token: HELIOS_TOKEN or the saved one,
// valid for at least minValid; the saved token is refreshed first when it
// has less left (or is in the last quarter of its lifetime). An expired
// token is an error: printing it would only move the failure to whatever
// uses it next.
func (a *app) printToken(minValid time.Duration) error {
	ss, err := a.session()
	if err != nil {
		return err
	}
	tok, source, creds := ss.tok, ss.source, ss.creds
	if exp, ok := tokenExpiry(tok, creds); ok && !time.Now().Before(exp) {
		if source == "HELIOS_TOKEN" {
			return &hinted{err: fmt.Errorf("the token in HELIOS_TOKEN expired %s", when(exp)),
				hint: "log in again: helios auth login, then export HELIOS_TOKEN=$(helios auth token), or unset HELIOS_TOKEN."}
		}
		return fmt.Errorf("the saved token expired %s: log in again: helios auth login", when(exp))
	}
	if u, err := core.DecodeUnverified(tok); err == nil && u.ChecksumOK && source != "HELIOS_TOKEN" {
		if life := u.Claims.Expires().Sub(u.Claims.Issued()); life < minValid {
			// Refreshing keeps the lifetime: it cannot help.
			return fmt.Errorf("the saved token lives %s in all, less than --min-valid %s: ask for less (--min-valid 0 prints it as is)", human(life), minValid)
		}
		a.autoRefresh(&ss, minValid)
		tok = ss.tok
	}
	if exp, ok := tokenExpiry(tok, ss.creds); ok && time.Until(exp) < minValid {
		if source == "HELIOS_TOKEN" {
			return &hinted{err: fmt.Errorf("the token in HELIOS_TOKEN expires %s, sooner than --min-valid %s", when(exp), minValid),
				hint: "helios auth refresh prints its successor; or ask for less with --min-valid."}
		}
		return fmt.Errorf("the saved token expires %s, sooner than --min-valid %s, and could not be refreshed: log in again: helios auth login", when(exp), minValid)
	}
	if a.output == "json" {
		return json.NewEncoder(a.stdout).Encode(map[string]string{"token": tok})
	}
	_, err = fmt.Fprintln(a.stdout, tok)
	return err
}

// tokenExpiry is when tok expires, read from the token itself (no key
// needed), else from the saved credentials when tok is the saved token.
func tokenExpiry(tok string, creds *credentials) (time.Time, bool) {
	if u, err := core.DecodeUnverified(tok); err == nil && u.ChecksumOK {
		return u.Claims.Expires(), true
	}
	if creds != nil && tok == creds.Token && !creds.ExpiresAt.IsZero() {
		return creds.ExpiresAt, true
	}
	return time.Time{}, false
}

// whoami is the server's description of a token (the identity query).
type whoami struct {
	TokenID   string    `json:"token_id"`
	Type      string    `json:"type"`
	Scopes    []string  `json:"scopes"`
	ExpiresAt time.Time `json:"expires_at"`
}

// identify asks the server who tok is, with the identity query of
// POST /api/v1/sql. The server verifies the token (expiry, revocation).
func identify(cl *client, tok string) (*whoami, error) {
	out, err := cl.do("POST", "/api/v1/sql", tok, map[string]string{"query": "SELECT * FROM helios_whoami()"})
	if err != nil {
		return nil, err
	}
	// Columns are {"name","type"} objects; servers before proxy mode sent
	// bare names, which are read too.
	var res struct {
		Columns []json.RawMessage `json:"columns"`
		Rows    [][]any           `json:"rows"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != len(res.Columns) {
		return nil, fmt.Errorf("unexpected identity response from %s", cl.base)
	}
	w := &whoami{}
	for i, raw := range res.Columns {
		var col struct{ Name string }
		if json.Unmarshal(raw, &col) != nil {
			_ = json.Unmarshal(raw, &col.Name)
		}
		v, _ := res.Rows[0][i].(string)
		switch col.Name {
		case "token_id":
			w.TokenID = v
		case "type":
			w.Type = v
		case "scopes":
			w.Scopes = strings.Split(v, ",")
		case "expires_at":
			w.ExpiresAt, _ = time.Parse(time.RFC3339, v)
		}
	}
	return w, nil
}

// status shows who the token belongs to, its type, scopes, expiry and
// time left, as the server sees it.
func (a *app) status() error {
	ss, err := a.freshSession(0)
	if err != nil {
		return err
	}
	cl, tok, source, creds := ss.cl, ss.tok, ss.source, ss.creds
	if !core.LooksLikeToken(tok) {
		return fmt.Errorf("the token from %s is not a HeliosDB token: it should start with hdb_live_, hdb_test_ or hdb_svc_, with no whitespace", source)
	}
	w, err := identify(cl, tok)
	if ae, ok := err.(*apiError); ok && ae.Code == "FORBIDDEN" {
		// Valid (the server checked it before refusing the query), but
		// without database:read the identity query is refused: the rest
		// comes from the token itself.
		w, err = &whoami{}, nil
	}
	if err != nil {
		return err
	}
	// Whatever the server did not say, the token says (decoded offline;
	// the server has just accepted it).
	if u, derr := core.DecodeUnverified(tok); derr == nil && u.ChecksumOK {
		if w.TokenID == "" {
			w.TokenID = u.Claims.ID.String()
		}
		if w.Type == "" {
			w.Type = u.PrefixType.String()
		}
		if len(w.Scopes) == 0 || (len(w.Scopes) == 1 && w.Scopes[0] == "") {
			w.Scopes = u.Claims.Scopes.Strings()
		}
		if w.ExpiresAt.IsZero() {
			w.ExpiresAt = u.Claims.Expires()
		}
	}
	email := ""
	if creds != nil && tok == creds.Token {
		email = creds.Email
	}
	left := time.Until(w.ExpiresAt).Round(time.Second)
	if a.output == "json" {
		return json.NewEncoder(a.stdout).Encode(map[string]any{"email": email, "source": source, "api_url": cl.base,
			"token_id": w.TokenID, "type": w.Type, "scopes": w.Scopes, "expires_at": w.ExpiresAt,
			"expires_in_seconds": int64(left / time.Second)})
	}
	if email == "" {
		email = "(unknown: token from " + source + ")"
	}
	fmt.Fprintf(a.stdout, "Logged in:  %s\nAPI:        %s\nToken:      %s (%s)\nType:       %s\nScopes:     %s\n",
		email, cl.base, w.TokenID, source, w.Type, strings.Join(w.Scopes, ", "))
	if !w.ExpiresAt.IsZero() {
		if left > 0 {
			fmt.Fprintf(a.stdout, "Expires:    %s\nTime left:  %s\n", w.ExpiresAt.UTC().Format(time.RFC3339), human(left))
		} else {
			fmt.Fprintf(a.stdout, "Expires:    %s\nTime left:  none: expired %s ago\n", w.ExpiresAt.UTC().Format(time.RFC3339), human(-left))
		}
	}
	return nil
}

// refresh exchanges the token for a new one (POST /v1/auth/refresh) and
// saves it when it came from the credentials file.
func (a *app) refresh() error {
	ss, err := a.session()
	if err != nil {
		return err
	}
	cl, tok, source, creds := ss.cl, ss.tok, ss.source, ss.creds
	out, err := cl.do("POST", "/v1/auth/refresh", tok, nil)
	if ae, ok := err.(*apiError); ok && ae.Code == "FORBIDDEN" && typeFromPrefix(tok) == "service" {
		return &hinted{err: err, hint: "rotate a service token instead: helios token create --name NAME --type service --scopes …, " +
			"switch to the new token, then helios token revoke OLD-NAME-OR-ID."}
	}
	if err != nil {
		return err
	}
	var r loginResponse
	if err := json.Unmarshal(out, &r); err != nil || r.Token == "" {
		return fmt.Errorf("unexpected refresh response from %s", cl.base)
	}
	fromFile := creds != nil && tok == creds.Token
	if fromFile {
		creds.Token, creds.ExpiresAt = r.Token, r.ExpiresAt
		if _, err := creds.save(); err != nil {
			return err
		}
	}
	if a.output == "json" {
		_, err = a.stdout.Write(out)
		return err
	}
	if !fromFile {
		// The token came from HELIOS_TOKEN: the new one must go back there.
		fmt.Fprintf(a.stderr, "Refreshed the token from %s; it expires %s. Set HELIOS_TOKEN to the new token:\n", source, when(r.ExpiresAt))
		_, err = fmt.Fprintln(a.stdout, r.Token)
		return err
	}
	fmt.Fprintf(a.stdout, "Token refreshed; it expires %s.\n", when(r.ExpiresAt))
	return nil
}

// logout invalidates the token (POST /v1/auth/logout, or logout-all with
// all) and forgets the saved credentials.
func (a *app) logout(all bool) error {
	ss, err := a.session()
	if err != nil {
		return err
	}
	cl, tok, creds := ss.cl, ss.tok, ss.creds
	path := "/v1/auth/logout"
	if all {
		path = "/v1/auth/logout-all"
	}
	out, err := cl.do("POST", path, tok, nil)
	if creds != nil && tok == creds.Token {
		if rerr := removeCredentials(); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return err
	}
	if a.output == "json" {
		_, err = a.stdout.Write(out)
		return err
	}
	if all {
		fmt.Fprintln(a.stdout, "Logged out everywhere: every token of the account is now invalid.")
	} else {
		fmt.Fprintln(a.stdout, "Logged out: the session token is now invalid.")
	}
	return nil
}

// typeFromPrefix names a token's type from its prefix.
func typeFromPrefix(tok string) string {
	for _, t := range []core.TokenType{core.TypeLive, core.TypeTest, core.TypeService} {
		if strings.HasPrefix(tok, t.Prefix()) {
			return t.String()
		}
	}
	return "unknown"
}

// when formats an expiry with the time left.
func when(t time.Time) string {
	d := time.Until(t)
	if d < 0 {
		return fmt.Sprintf("at %s (%s ago)", t.UTC().Format(time.RFC3339), human(-d))
	}
	return fmt.Sprintf("at %s (in %s)", t.UTC().Format(time.RFC3339), human(d))
}

// human formats a duration as days, hours and minutes ("6d 23h 59m").
func human(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	m := int64(d / time.Minute)
	days, hours, mins := m/(24*60), m/60%24, m%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh %dm", days, hours, mins)
	case hours > 0:
		return fmt.Sprintf("%dh %dm", hours, mins)
	}
	return fmt.Sprintf("%dm", mins)
}
