package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/spf13/cobra"
)

// tokenInfo is one token record as GET /v1/auth/tokens lists it.
type tokenInfo struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Type       string     `json:"type"`
	LastUsed   *time.Time `json:"last_used"`
	ExpiresAt  time.Time  `json:"expires_at"`
	Scopes     []string   `json:"scopes"`
	AllowedIPs []string   `json:"allowed_ips"`
	Token      string     `json:"token"`
}

// tokenCommand is `helios token …`.
func (a *app) tokenCommand() *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "Create, list and revoke tokens"}
	var (
		name, typ  string
		scopes     []string
		allowedIPs []string
		days       int
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a token (shown once: store it now)",
		Example: `  helios token create --name web-app --scopes database:read,database:write
  helios token create --name ci-cd --type service --scopes 'branch:*' --expires-in-days 90
  NEW_TOKEN=$(helios token create --name app-v2 --output=json | jq -r '.token')`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{"name": name}
			if typ != "" {
				body["type"] = typ
			}
			if len(scopes) > 0 {
				body["scopes"] = scopes
			}
			if cmd.Flags().Changed("expires-in-days") {
				body["expires_in_days"] = days
			}
			if len(allowedIPs) > 0 {
				body["allowed_ips"] = allowedIPs
			}
			return a.createToken(body)
		},
	}
	f := create.Flags()
	f.StringVar(&name, "name", "", "a name for the token, e.g. web-app (required)")
	f.StringVar(&typ, "type", "", "token type: live, test or service")
	f.StringSliceVar(&scopes, "scopes", nil, "comma-separated scopes, e.g. database:read,database:write or branch:*")
	f.IntVar(&days, "expires-in-days", 0, "lifetime in days (default: the type's lifetime)")
	f.StringSliceVar(&allowedIPs, "allowed-ips", nil, "comma-separated client addresses allowed to use the token")
	_ = create.MarkFlagRequired("name")
	_ = create.RegisterFlagCompletionFunc("type", cobra.FixedCompletions(
		[]string{"live\ta user's token", "test\ttest databases only, at most 24 hours", "service\tautomation; needs --scopes"},
		cobra.ShellCompDirectiveNoFileComp))
	_ = create.RegisterFlagCompletionFunc("scopes", completeScopes)

	c.AddCommand(create,
		&cobra.Command{Use: "list", Short: "List your tokens", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return a.listTokens() }},
		&cobra.Command{Use: "inspect [TOKEN|-]", Short: "Decode a token offline: type, id, account, times, scopes, key id, checksum",
			Long: "Decode a token with no key and no network: its type, id (tok_…), account, issue and expiry times,\n" +
				"scopes, key id, and whether its public CRC-32C checksum holds (a secret scanner's test: a real\n" +
				"token as minted, not a typo or a look-alike). Only the server can tell whether it is genuine,\n" +
				"unexpired and unrevoked: helios auth status asks it.\n\n" +
				"TOKEN is the token, - reads it from stdin; with neither, the current token (HELIOS_TOKEN or the saved one).\n" +
				"Exits non-zero when the string is not a well-formed token with a valid checksum.",
			Args: cobra.MaximumNArgs(1),
			RunE: func(_ *cobra.Command, args []string) error { return a.inspectToken(args) }},
		&cobra.Command{Use: "revoke <id|name>", Short: "Revoke a token by id (tok_…) or by name", Args: cobra.ExactArgs(1),
			ValidArgsFunction: a.completeTokens,
			RunE:              func(_ *cobra.Command, args []string) error { return a.revokeToken(args[0]) }},
	)
	return c
}

// session is the current token (HELIOS_TOKEN or the saved one), where it
// came from, the saved credentials (nil when none) and the API client to
// call with it.
type session struct {
	cl     *client
	tok    string
	source string
	creds  *credentials
}

// session returns the current session; the API URL saved at login applies
// unless --api-url or HELIOS_API_URL says otherwise.
func (a *app) session() (session, error) {
	tok, source, creds, err := currentToken()
	if err != nil {
		return session{}, err
	}
	saved := ""
	if creds != nil {
		saved = creds.APIURL
	}
	cl, err := a.client(saved)
	return session{cl: cl, tok: tok, source: source, creds: creds}, err
}

// freshSession is session, with the saved token refreshed first when it
// is in the last quarter of its lifetime or has less than minValid left.
func (a *app) freshSession(minValid time.Duration) (session, error) {
	ss, err := a.session()
	if err != nil {
		return ss, err
	}
	a.autoRefresh(&ss, minValid)
	return ss, nil
}

// autoRefresh replaces the saved token with its successor (POST
// /v1/auth/refresh, saved atomically with mode 0600) when it is in the last
// quarter of its lifetime — for the default 7-day login that is the last
// 42 hours, so always before its last day — or has less than minValid
// left, and says so on stderr. A token from HELIOS_TOKEN is left alone (the
// CLI cannot change the environment), as is an expired one (the server
// refuses to refresh it: the command's own request reports that). A failed
// refresh is a warning: the token still works until it expires.
func (a *app) autoRefresh(ss *session, minValid time.Duration) {
	if ss.creds == nil || ss.tok != ss.creds.Token {
		return
	}
	u, err := core.DecodeUnverified(ss.tok)
	if err != nil || !u.ChecksumOK || u.Claims.Type == core.TypeService {
		return
	}
	exp := u.Claims.Expires()
	life, left := exp.Sub(u.Claims.Issued()), time.Until(exp)
	if left <= 0 || (left >= life/4 && left >= minValid) {
		return
	}
	out, err := ss.cl.do("POST", "/v1/auth/refresh", ss.tok, nil)
	if ae, ok := err.(*apiError); ok && ae.Code == "ALREADY_REFRESHED" {
		// Another helios refreshed it a moment ago: use what it saved.
		if c, lerr := loadCredentials(); lerr == nil && c != nil && c.Token != "" && c.Token != ss.tok {
			ss.tok, ss.creds = c.Token, c
			return
		}
	}
	var r loginResponse
	if err == nil && (json.Unmarshal(out, &r) != nil || r.Token == "") {
		err = fmt.Errorf("unexpected refresh response from %s", ss.cl.base)
	}
	if err == nil {
		ss.creds.Token, ss.creds.ExpiresAt = r.Token, r.ExpiresAt
		_, err = ss.creds.save()
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "Warning: could not refresh the saved token, which expires %s: %s\n", when(exp), restToCLI.Replace(err.Error()))
		ss.creds.Token = ss.tok
		return
	}
	ss.tok = r.Token
	fmt.Fprintf(a.stderr, "Refreshed the saved token (%s left); the new one expires %s.\n", human(left), when(r.ExpiresAt))
}

// createToken creates a token (POST /v1/auth/tokens): the token on stdout,
// its description on stderr.
func (a *app) createToken(body map[string]any) error {
	ss, err := a.freshSession(0)
	if err != nil {
		return err
	}
	cl, tok := ss.cl, ss.tok
	out, err := cl.do("POST", "/v1/auth/tokens", tok, body)
	if err != nil {
		return err
	}
	if a.output == "json" {
		_, err = a.stdout.Write(out)
		return err
	}
	var t tokenInfo
	if err := json.Unmarshal(out, &t); err != nil || t.Token == "" {
		return fmt.Errorf("unexpected response from %s", cl.base)
	}
	fmt.Fprintf(a.stderr, "Created token %q (%s): type %s, scopes %s, expires %s.\n",
		t.Name, t.ID, t.Type, strings.Join(t.Scopes, ","), when(t.ExpiresAt))
	fmt.Fprintln(a.stderr, "Store it now: it is not shown again.")
	_, err = fmt.Fprintln(a.stdout, t.Token)
	return err
}

// list fetches the caller's tokens; raw is the API's JSON.
func (a *app) list(cl *client, tok string) (list []tokenInfo, raw []byte, err error) {
	raw, err = cl.do("GET", "/v1/auth/tokens", tok, nil)
	if err != nil {
		return nil, nil, err
	}
	var r struct {
		Tokens []tokenInfo `json:"tokens"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, nil, fmt.Errorf("unexpected token list from %s", cl.base)
	}
	return r.Tokens, raw, nil
}

// listTokens prints the caller's tokens as a table.
func (a *app) listTokens() error {
	ss, err := a.freshSession(0)
	if err != nil {
		return err
	}
	cl, tok := ss.cl, ss.tok
	list, raw, err := a.list(cl, tok)
	if err != nil {
		return err
	}
	if a.output == "json" {
		_, err = a.stdout.Write(raw)
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "No tokens.")
		return nil
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tTYPE\tSCOPES\tALLOWED IPS\tEXPIRES\tLAST USED")
	for _, t := range list {
		last := "never"
		if t.LastUsed != nil {
			last = t.LastUsed.UTC().Format(time.RFC3339)
		}
		ips := "any"
		if len(t.AllowedIPs) > 0 {
			ips = strings.Join(t.AllowedIPs, ",")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Type, strings.Join(t.Scopes, ","), ips,
			t.ExpiresAt.UTC().Format(time.RFC3339), last)
	}
	return w.Flush()
}

// revokeToken revokes a token by id, or by name after looking the name up
// in the token list (an ambiguous name is an error).
func (a *app) revokeToken(ref string) error {
	ss, err := a.freshSession(0)
	if err != nil {
		return err
	}
	cl, tok := ss.cl, ss.tok
	id := ref
	if !strings.HasPrefix(ref, "tok_") {
		list, _, err := a.list(cl, tok)
		if err != nil {
			return err
		}
		var ids []string
		for _, t := range list {
			if t.Name == ref {
				ids = append(ids, t.ID)
			}
		}
		switch len(ids) {
		case 0:
			return fmt.Errorf("no token named %q: see helios token list", ref)
		case 1:
			id = ids[0]
		default:
			return fmt.Errorf("%d tokens are named %q (%s): revoke one by id", len(ids), ref, strings.Join(ids, ", "))
		}
	}
	out, err := cl.do("DELETE", "/v1/auth/tokens/"+url.PathEscape(id), tok, nil)
	if err != nil {
		return err
	}
	if a.output == "json" {
		_, err = a.stdout.Write(out)
		return err
	}
	if id != ref {
		fmt.Fprintf(a.stdout, "Revoked token %q (%s).\n", ref, id)
	} else {
		fmt.Fprintf(a.stdout, "Revoked token %s.\n", id)
	}
	return nil
}

// inspectToken decodes a token offline (core.DecodeUnverified) and prints
// its fields; it never prints the token.
func (a *app) inspectToken(args []string) error {
	var tok string
	switch {
	case len(args) == 1 && args[0] == "-":
		b, err := io.ReadAll(io.LimitReader(a.stdin, 4096))
		if err != nil {
			return fmt.Errorf("read the token from stdin: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	case len(args) == 1:
		tok = args[0]
	default:
		t, _, _, err := currentToken()
		if err != nil {
			return err
		}
		tok = t
	}
	u, err := core.DecodeUnverified(tok)
	if err != nil {
		return err
	}
	c := u.Claims
	problem := ""
	switch {
	case !u.ChecksumOK:
		problem = "the checksum does not hold: not a token as minted (a typo, a truncation or a look-alike)"
	case c.Version != core.FormatVersion:
		problem = fmt.Sprintf("format version %d, not %d", c.Version, core.FormatVersion)
	case c.Type != u.PrefixType:
		problem = fmt.Sprintf("the prefix says %s but the body says type %d", u.PrefixType, c.Type)
	}
	var flags []string
	if c.Flags&core.FlagIPPolicy != 0 {
		flags = append(flags, "ip-policy")
	}
	if c.Flags&core.FlagTestOnly != 0 {
		flags = append(flags, "test-only")
	}
	if a.output == "json" {
		if err := json.NewEncoder(a.stdout).Encode(map[string]any{"type": u.PrefixType.String(), "id": c.ID.String(),
			"account": c.Account, "issued_at": c.Issued(), "expires_at": c.Expires(), "scopes": c.Scopes.Strings(),
			"key_id": c.KeyID, "flags": flags, "checksum_ok": u.ChecksumOK, "well_formed": problem == ""}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "Type:       %s\nID:         %s\nAccount:    %d\nIssued:     %s\nExpires:    %s\nScopes:     %s\nKey ID:     %d\n",
			u.PrefixType, c.ID, c.Account, c.Issued().Format(time.RFC3339), expiresText(c.Expires()),
			strings.Join(c.Scopes.Strings(), ", "), c.KeyID)
		if len(flags) > 0 {
			fmt.Fprintf(a.stdout, "Flags:      %s\n", strings.Join(flags, ", "))
		}
		if problem == "" {
			fmt.Fprintln(a.stdout, "Checksum:   valid (CRC-32C); offline check only: helios auth status asks the server whether it is genuine and unrevoked")
		} else {
			fmt.Fprintln(a.stdout, "Checksum:   INVALID")
		}
	}
	if problem != "" {
		return &hinted{err: fmt.Errorf("not a valid HeliosDB token: %s", problem), hint: "copy the whole token again (hdb_…, 87 or 88 characters)."}
	}
	return nil
}

// expiresText is an expiry with the time left or since.
func expiresText(t time.Time) string {
	if d := time.Until(t); d <= 0 {
		return t.UTC().Format(time.RFC3339) + " (expired " + human(-d) + " ago)"
	}
	return t.UTC().Format(time.RFC3339) + " (in " + human(time.Until(t)) + ")"
}

// completeScopes completes the comma-separated --scopes value: each scope
// of the guide, each family's wildcard (branch:*) and "*", after the scopes
// already typed.
func completeScopes(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	done := ""
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		done = toComplete[:i+1]
	}
	names := []string{"*"}
	seen := map[string]bool{}
	for s := core.Scope(0); int(s) < core.NumScopes; s++ {
		fam, _, _ := strings.Cut(s.String(), ":")
		if !seen[fam] {
			seen[fam] = true
			names = append(names, fam+":*")
		}
		names = append(names, s.String())
	}
	var out []string
	for _, n := range names {
		if !strings.Contains(","+done, ","+n+",") {
			out = append(out, done+n)
		}
	}
	return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
}

// completeTokens completes helios token revoke's argument with the names
// and ids of the caller's tokens, asked of the API when there is a token to
// ask with (nothing otherwise; completion never prompts or refreshes).
func (a *app) completeTokens(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ss, err := a.session()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ss.cl.http.Timeout = 5 * time.Second
	list, _, err := a.list(ss.cl, ss.tok)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := map[string]int{}
	for _, t := range list {
		names[t.Name]++
	}
	var out []string
	for _, t := range list {
		out = append(out, t.ID+"\t"+t.Name)
		if names[t.Name] == 1 && t.Name != "" && !strings.HasPrefix(t.Name, "tok_") {
			out = append(out, t.Name+"\t"+t.ID)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
