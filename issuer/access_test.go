package issuer

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/heliosdb/auth/core"
)

// tokenKind is one kind of caller in the endpoint table: how to create it
// from the account's login.
type tokenKind struct {
	name string
	req  *CreateTokenRequest // nil: the login token itself
	// mention is what a refusal of the account endpoints names about the
	// token (its scopes, or its type).
	mention string
}

var allButBillingWrite = func() []string {
	var names []string
	for s := core.Scope(0); s < core.Scope(core.NumScopes); s++ {
		if s != core.ScopeBillingWrite {
			names = append(names, s.String())
		}
	}
	return names
}()

var tokenKinds = []tokenKind{
	{name: "live full (login)"},
	{name: "live full (created)", req: &CreateTokenRequest{Name: "full"}},
	{name: "live scoped", req: &CreateTokenRequest{Name: "ro", Scopes: []string{"database:read"}}, mention: "this token has database:read:"},
	{name: "live all but one scope", req: &CreateTokenRequest{Name: "nearly", Scopes: allButBillingWrite}, mention: "billing:read:"},
	{name: "test full", req: &CreateTokenRequest{Name: "t", Type: "test"}, mention: "a test token cannot do it"},
	{name: "test scoped", req: &CreateTokenRequest{Name: "t", Type: "test", Scopes: []string{"database:read"}}, mention: "a test token cannot do it"},
	{name: "service full", req: &CreateTokenRequest{Name: "svc", Type: "service", Scopes: []string{"*"}}, mention: "a service token cannot do it"},
	{name: "service scoped", req: &CreateTokenRequest{Name: "svc", Type: "service", Scopes: []string{"database:read"}}, mention: "a service token cannot do it"},
}

// TestAccountEndpointTable checks every cell of the endpoint table in the
// package documentation: each /v1/auth endpoint that takes a token, called
// by each kind of token, gets the documented status; a refusal is 403
// FORBIDDEN saying why, with the RFC 6750 challenge naming scope "*", and
// changes nothing (the log's sequence number stays, the account's other
// token and the caller still verify); an allowed call has its effect.
func TestAccountEndpointTable(t *testing.T) {
	const (
		ok      = 0
		refused = 403
	)
	type cell = int // ok, or refused
	// want[endpoint] is indexed like tokenKinds.
	want := map[string][8]cell{
		"logout":     {ok, ok, ok, ok, ok, ok, ok, ok},
		"refresh":    {ok, ok, ok, ok, ok, ok, refused, refused},
		"logout-all": {ok, ok, refused, refused, refused, refused, refused, refused},
		"list":       {ok, ok, refused, refused, refused, refused, refused, refused},
		"create":     {ok, ok, refused, refused, refused, refused, refused, refused},
		"delete":     {ok, ok, refused, refused, refused, refused, refused, refused},
	}
	f := newFixture(t, nil)
	n := 0
	for _, ep := range []string{"logout", "refresh", "logout-all", "list", "create", "delete"} {
		for ki, kind := range tokenKinds {
			n++
			t.Run(ep+"/"+kind.name, func(t *testing.T) {
				_, login := f.user(t, fmt.Sprintf("cell%d@example.com", n))
				other, otherRec, err := f.svc.CreateToken(&login, &CreateTokenRequest{Name: "other", Scopes: []string{"database:read"}})
				if err != nil {
					t.Fatal(err)
				}
				caller := login
				var callerTok string
				if kind.req != nil {
					cr := *kind.req
					if callerTok, _, err = f.svc.CreateToken(&login, &cr); err != nil {
						t.Fatal(err)
					}
					if caller, err = f.verify(t, callerTok); err != nil {
						t.Fatal(err)
					}
				}
				req := map[string][3]string{ // method, path, body
					"logout":     {"POST", "/v1/auth/logout", ""},
					"refresh":    {"POST", "/v1/auth/refresh", ""},
					"logout-all": {"POST", "/v1/auth/logout-all", ""},
					"list":       {"GET", "/v1/auth/tokens", ""},
					// The escalation: a year-long child with the default scopes.
					"create": {"POST", "/v1/auth/tokens", `{"name":"child","expires_in_days":365}`},
					"delete": {"DELETE", "/v1/auth/tokens/" + otherRec.ID.String(), ""},
				}[ep]
				seq := f.store.LastSeq()
				status, resp, hdr := call(f.svc, req[0], req[1], req[2], &caller)

				if want[ep][ki] == refused {
					code, msg := errCode(resp)
					if status != 403 || code != core.CodeForbidden {
						t.Fatalf("%d %s %q, want 403 FORBIDDEN", status, code, msg)
					}
					if ep == "refresh" {
						if !strings.Contains(msg, "service tokens are not refreshed") || !strings.Contains(msg, "POST /v1/auth/login") {
							t.Fatalf("message %q", msg)
						}
					} else {
						if !strings.Contains(msg, "needs a full-access") || !strings.Contains(msg, kind.mention) || !strings.Contains(msg, "POST /v1/auth/login") {
							t.Fatalf("message %q lacks why (%q) or what succeeds", msg, kind.mention)
						}
						if got := string(hdr.Peek("WWW-Authenticate")); got != `Bearer realm="heliosdb", error="insufficient_scope", scope="*"` {
							t.Fatalf("challenge %q", got)
						}
					}
					if f.store.LastSeq() != seq {
						t.Fatalf("a refused %s changed state: seq %d → %d", ep, seq, f.store.LastSeq())
					}
					for name, tok := range map[string]string{"the other token": other, "the caller": callerTok} {
						if _, err := f.verify(t, tok); tok != "" && err != nil {
							t.Fatalf("%s stopped working after a refused %s: %v", name, ep, err)
						}
					}
					return
				}

				if status != 200 && status != 201 {
					code, msg := errCode(resp)
					t.Fatalf("%d %s %q, want success", status, code, msg)
				}
				switch ep {
				case "logout":
					if callerTok != "" {
						if _, err := f.verify(t, callerTok); !errors.Is(err, core.ErrRevoked) {
							t.Fatalf("after logout: %v", err)
						}
					}
				case "refresh":
					tok, _ := resp["token"].(string)
					nc, err := f.verify(t, tok)
					if err != nil || nc.Scopes != caller.Scopes || nc.Type != caller.Type || nc.Flags != caller.Flags ||
						nc.ExpiresAt-nc.IssuedAt != caller.ExpiresAt-caller.IssuedAt {
						t.Fatalf("successor %+v of %+v: %v", nc, caller, err)
					}
				case "logout-all":
					if _, err := f.verify(t, other); !errors.Is(err, core.ErrLoggedOut) {
						t.Fatalf("other token after logout-all: %v", err)
					}
				case "list":
					if list, _ := resp["tokens"].([]any); len(list) < 2 {
						t.Fatalf("list %v", resp)
					}
				case "create":
					tok, _ := resp["token"].(string)
					cc, err := f.verify(t, tok)
					if err != nil || cc.Scopes != core.AllScopes || status != 201 {
						t.Fatalf("child %+v: %v", cc, err)
					}
				case "delete":
					if _, err := f.verify(t, other); !errors.Is(err, core.ErrRevoked) {
						t.Fatalf("other token after delete: %v", err)
					}
				}
			})
		}
	}
}

// TestAccountEndpointsRefuseBeforeTheBody: a caller that may not use an
// account endpoint hears so whatever it sent (the body is not read).
func TestAccountEndpointsRefuseBeforeTheBody(t *testing.T) {
	f := newFixture(t, nil)
	_, login := f.user(t, "ann@example.com")
	ro, _, _ := f.svc.CreateToken(&login, &CreateTokenRequest{Name: "ro", Scopes: []string{"database:read"}})
	svc, _, _ := f.svc.CreateToken(&login, &CreateTokenRequest{Name: "svc", Type: "service", Scopes: []string{"*"}})
	roc, _ := f.verify(t, ro)
	svcc, _ := f.verify(t, svc)
	for _, tc := range []struct {
		c                  *core.Claims
		method, path, body string
	}{
		{&roc, "POST", "/v1/auth/tokens", `{"name":`},
		{&roc, "POST", "/v1/auth/tokens", `{"name":"x","admin":true}`},
		{&roc, "POST", "/v1/auth/logout-all", `{"all":true}`},
		{&roc, "DELETE", "/v1/auth/tokens/", ""},
		{&svcc, "POST", "/v1/auth/refresh", `{"x":1}`},
	} {
		if status, body, _ := call(f.svc, tc.method, tc.path, tc.body, tc.c); status != 403 {
			t.Errorf("%s %s %q: %d %v, want 403", tc.method, tc.path, tc.body, status, body)
		}
	}
}

// TestCreatedTokenLimits: what a full-access creator may give: scopes are
// its own or fewer, allowed_ips are its own (by default) or narrower, and
// the lifetime is the new token's type's.
func TestCreatedTokenLimits(t *testing.T) {
	f := newFixture(t, nil)
	_, login := f.user(t, "ann@example.com")
	fenced, _, err := f.svc.CreateToken(&login, &CreateTokenRequest{Name: "fenced", AllowedIPs: []string{"10.0.0.0/8", "2001:db8::/32"}})
	if err != nil {
		t.Fatal(err)
	}
	fc, _ := f.verify(t, fenced)
	for _, tc := range []struct {
		ips  []string
		want []string // the child's allowlist; nil: refused, naming the first outside entry
		bad  string
	}{
		{nil, []string{"10.0.0.0/8", "2001:db8::/32"}, ""},
		{[]string{}, []string{"10.0.0.0/8", "2001:db8::/32"}, ""},
		{[]string{"10.1.2.3", "10.9.0.0/16", "2001:db8:1::/48"}, []string{"10.1.2.3", "10.9.0.0/16", "2001:db8:1::/48"}, ""},
		{[]string{"10.1.2.3", "203.0.113.5"}, nil, "203.0.113.5"},
		{[]string{"0.0.0.0/0"}, nil, "0.0.0.0/0"},
		{[]string{"10.0.0.0/7"}, nil, "10.0.0.0/7"},
		{[]string{"::/0"}, nil, "::/0"},
		{[]string{"::ffff:10.1.2.3"}, []string{"10.1.2.3"}, ""}, // a mapped address is its IPv4
		{[]string{"::ffff:10.0.0.0/104"}, nil, "::ffff:10.0.0.0/104"},
	} {
		tok, rec, err := f.svc.CreateToken(&fc, &CreateTokenRequest{Name: "child", AllowedIPs: tc.ips})
		if tc.want == nil {
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != 403 || !strings.Contains(ae.Message, tc.bad+" is outside this token's own allowed_ips") {
				t.Errorf("allowed_ips %v: %v, want 403 naming %s", tc.ips, err, tc.bad)
			}
			continue
		}
		if err != nil || strings.Join(rec.AllowedIPs, ",") != strings.Join(tc.want, ",") || rec.Flags&core.FlagIPPolicy == 0 {
			t.Errorf("allowed_ips %v: %+v %v, want %v", tc.ips, rec, err, tc.want)
			continue
		}
		cc, err := f.verify(t, tok)
		outside := netip.MustParseAddr("192.0.2.1")
		if err != nil || cc.Flags&core.FlagIPPolicy == 0 || f.store.Policy().AllowedFrom(cc.ID, outside) {
			t.Errorf("allowed_ips %v: the child (%v) is usable from %s", tc.ips, err, outside)
		}
	}
	// The refused creations changed nothing but the successful ones.
	list, _ := f.svc.ListTokens(&login)
	if len(list) != 2+4 {
		t.Fatalf("%d tokens listed", len(list))
	}

	// Lifetimes: the new token's type decides, not the creator's.
	for _, tc := range []struct {
		typ  string
		days int
		ok   bool
	}{
		{"service", 365, true}, {"live", 365, true}, {"live", 366, false}, {"test", 1, true}, {"test", 2, false},
	} {
		req := CreateTokenRequest{Name: "x", Type: tc.typ, Scopes: []string{"database:read"}, ExpiresInDays: &tc.days}
		_, rec, err := f.svc.CreateToken(&login, &req)
		if got := err == nil; got != tc.ok || (tc.ok && rec.ExpiresAt-rec.Created != int64(tc.days)*86400) {
			t.Errorf("%s %d days: %+v %v, want ok=%v", tc.typ, tc.days, rec, err, tc.ok)
		}
	}
}

// TestRefreshKeepsLimits: refreshing a scoped, fenced token gives a
// successor with exactly its scopes, flags, allowlist and lifetime, which is
// refused the account endpoints as its predecessor was.
func TestRefreshKeepsLimits(t *testing.T) {
	f := newFixture(t, nil)
	_, login := f.user(t, "ann@example.com")
	days := 30
	ro, rec, err := f.svc.CreateToken(&login, &CreateTokenRequest{Name: "ro", Scopes: []string{"database:read", "metrics:read"},
		AllowedIPs: []string{"127.0.0.0/8"}, ExpiresInDays: &days})
	if err != nil {
		t.Fatal(err)
	}
	roc, _ := f.verify(t, ro)
	status, resp, _ := call(f.svc, "POST", "/v1/auth/refresh", "", &roc)
	tok, _ := resp["token"].(string)
	nc, err := f.verify(t, tok)
	if status != 200 || err != nil {
		t.Fatalf("refresh: %d %v %v", status, resp, err)
	}
	var succ TokenRecord
	if err := f.store.get(tokenKey(nc.Account, nc.ID), &succ); err != nil {
		t.Fatal(err)
	}
	if nc.Scopes != roc.Scopes || nc.Flags != roc.Flags || nc.Type != roc.Type || nc.ExpiresAt-nc.IssuedAt != 30*86400 ||
		strings.Join(succ.AllowedIPs, ",") != strings.Join(rec.AllowedIPs, ",") || succ.Session != rec.Session {
		t.Fatalf("successor %+v (record %+v) of %+v", nc, succ, roc)
	}
	if status, _, _ := call(f.svc, "POST", "/v1/auth/tokens", `{"name":"child"}`, &nc); status != 403 {
		t.Fatalf("the successor creates tokens: %d", status)
	}
}
