package issuer

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/heliosdb/auth/core"
)

// requireFullAccess refuses callers that may not manage the account:
// listing, creating and revoking tokens and logging out everywhere need a
// live token holding every scope ("*", the guide's "Full access"). A token
// with fewer scopes, or of another type, could otherwise grant itself a
// broader or longer-lived child, revoke its owner's other tokens, or log its
// owner out everywhere (see the endpoint table in the package
// documentation). The refusal says why and names what succeeds instead.
func requireFullAccess(c *core.Claims, what string) *APIError {
	if c.Type != core.TypeLive {
		return forbiddenFullAccess("%s needs a full-access live token (scope *), such as the one POST /v1/auth/login returns; a %s token cannot do it", what, c.Type)
	}
	if c.Scopes&core.AllScopes != core.AllScopes {
		return forbiddenFullAccess("%s needs a full-access token (scope *); this token has %s: "+
			"use the token POST /v1/auth/login returns, or one created from it without \"scopes\"", what, scopeList(c.Scopes))
	}
	return nil
}

// scopeList names a token's scopes for a message: "database:read,
// metrics:read", or "no scopes".
func scopeList(ss core.ScopeSet) string {
	if names := ss.Strings(); len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return "no scopes"
}

// MaxTokenNameLen bounds a token's name.
const MaxTokenNameLen = 100

// MaxAllowedIPs bounds a token's allowlist.
const MaxAllowedIPs = 64

// issueTime is when a token minted now for account is issued: now, or the
// account's logout-all epoch when that lies ahead.
func (s *Service) issueTime(account uint64) int64 {
	return max(s.opts.Now().Unix(), s.store.revs.NotBefore(account))
}

// create fills rec's times, commits it and mints its token.
func (s *Service) create(rec *TokenRecord, days int) (string, *TokenRecord, error) {
	rec.Created = s.issueTime(rec.Account)
	exp, err := s.opts.Lifetimes.Expiry(rec.Type, time.Unix(rec.Created, 0), days)
	if err != nil {
		return "", nil, badRequest(CodeInvalidRequest, "%s", err.Error())
	}
	rec.ExpiresAt = exp.Unix()
	res, err := s.store.Submit(&Command{Op: OpCreateToken, At: rec.Created, Token: rec})
	if err != nil {
		return "", nil, err
	}
	tok, err := s.mint(res.Token)
	return tok, res.Token, err
}

// mint makes the token string for a committed record.
func (s *Service) mint(r *TokenRecord) (string, error) {
	m := s.minters.Get().(*core.Minter)
	defer s.minters.Put(m)
	b, _, err := m.Mint(make([]byte, 0, core.MaxTokenLen), r.Claims())
	return string(b), err
}

// CreateTokenRequest is the body of POST /v1/auth/tokens.
type CreateTokenRequest struct {
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Scopes        []string `json:"scopes"`
	ExpiresInDays *int     `json:"expires_in_days"`
	AllowedIPs    []string `json:"allowed_ips"`
}

// CreateToken creates a token for the caller's account. The caller must be
// a full-access live token (requireFullAccess). The new token's scopes
// default to the caller's and may only narrow them; its allowed_ips default
// to the caller's and may only narrow them; its lifetime is its own type's
// (core.Lifetimes.Expiry: a test token at most 24 hours, any token at most
// MaxDays). It is not tied to the caller's lifetime: the guide's service
// tokens and 30-day tokens outlive the 7-day login that created them.
func (s *Service) CreateToken(c *core.Claims, req *CreateTokenRequest) (string, *TokenRecord, error) {
	if e := requireFullAccess(c, "creating tokens"); e != nil {
		return "", nil, e
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > MaxTokenNameLen || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", nil, badRequest(CodeInvalidRequest, "name is required: 1 to %d printable characters, e.g. \"ci-cd-pipeline\"", MaxTokenNameLen)
	}
	typ := core.TypeLive
	if req.Type != "" {
		t, err := core.ParseTokenType(req.Type)
		if err != nil {
			return "", nil, badRequest(CodeInvalidRequest, "%s", err.Error())
		}
		typ = t
	}
	scopes := c.Scopes
	switch {
	case req.Scopes == nil && typ == core.TypeService:
		return "", nil, badRequest(CodeInvalidRequest, "service tokens need explicit scopes, e.g. \"scopes\": [\"database:read\"]")
	case req.Scopes != nil && len(req.Scopes) == 0:
		return "", nil, badRequest(CodeInvalidRequest, "scopes is empty: list at least one scope, or omit it to copy yours")
	case req.Scopes != nil:
		set, err := core.ParseScopes(req.Scopes)
		if err != nil {
			return "", nil, badRequest(CodeUnknownScope, "%s", err.Error())
		}
		scopes = set
	}
	// A full-access creator holds every scope, so this holds today; it is
	// kept so that a created token can never hold more than its creator
	// whatever requireFullAccess becomes.
	if missing, ok := c.Scopes.Missing(scopes); ok {
		return "", nil, forbidden("Token does not have required scope: %s (a token can only grant scopes its creator holds)", missing)
	}
	var flags core.Flags
	if typ == core.TypeTest {
		flags |= core.FlagTestOnly
	}
	ips, apiErr := canonicalIPs(req.AllowedIPs)
	if apiErr != nil {
		return "", nil, apiErr
	}
	var creator TokenRecord
	cerr := s.store.get(tokenKey(c.Account, c.ID), &creator)
	if c.Flags&core.FlagIPPolicy != 0 {
		// A creator limited to some addresses cannot create a token usable
		// from others: the child's allowlist defaults to the creator's and
		// must lie within it.
		if cerr != nil {
			return "", nil, forbidden("this token is limited to some addresses, and its allowlist has no record in the issuer: log in again")
		}
		if ips == nil {
			ips = creator.AllowedIPs
		} else if outside := ipsOutside(ips, creator.AllowedIPs); outside != "" {
			return "", nil, forbidden("allowed_ips: %s is outside this token's own allowed_ips (%s): a token can only be limited further than its creator",
				outside, strings.Join(creator.AllowedIPs, ", "))
		}
	}
	if len(ips) > 0 {
		flags |= core.FlagIPPolicy
	}
	days := 0
	if req.ExpiresInDays != nil {
		days = *req.ExpiresInDays
	}
	session := c.ID.String()
	if cerr == nil && creator.Session != "" {
		session = creator.Session
	}
	rec := &TokenRecord{ID: core.NewTokenID(), Account: c.Account, Name: name, Type: typ, Scopes: scopes,
		Flags: flags, AllowedIPs: ips, Session: session}
	tok, rec, err := s.create(rec, days)
	if err == nil {
		s.log.Info("token created", "account", c.Account, "token_id", rec.ID.String(), "type", typ.String(), "by", c.ID.String())
	}
	return tok, rec, err
}

// canonicalIPs validates an allowlist and returns it in canonical form.
func canonicalIPs(list []string) ([]string, *APIError) {
	if len(list) > MaxAllowedIPs {
		return nil, badRequest(CodeInvalidRequest, "allowed_ips has %d entries: at most %d", len(list), MaxAllowedIPs)
	}
	var out []string
	for _, s := range list {
		p, err := ParseIPOrCIDR(s)
		if err != nil || strings.Contains(s, "%") {
			return nil, badRequest(CodeInvalidRequest, "allowed_ips: %q is not an IP address or CIDR network such as 203.0.113.50 or 10.0.0.0/8", s)
		}
		if p.IsSingleIP() {
			out = append(out, p.Addr().String())
		} else {
			out = append(out, p.String())
		}
	}
	return out, nil
}

// ipsOutside returns the first entry of ips (canonical addresses or
// networks) that no entry of within contains, or "" when each one lies
// inside some entry of within.
func ipsOutside(ips, within []string) string {
	for _, a := range ips {
		p, err := ParseIPOrCIDR(a)
		inside := false
		for _, b := range within {
			q, qerr := ParseIPOrCIDR(b)
			if err == nil && qerr == nil && q.Addr().Is4() == p.Addr().Is4() && q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
				inside = true
				break
			}
		}
		if !inside {
			return a
		}
	}
	return ""
}

// TokenInfo is one entry of GET /v1/auth/tokens.
type TokenInfo struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Type       string     `json:"type"`
	LastUsed   *time.Time `json:"last_used"`
	ExpiresAt  time.Time  `json:"expires_at"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	AllowedIPs []string   `json:"allowed_ips,omitempty"`
}

// Info returns the record as the API shows it.
func (r *TokenRecord) Info() TokenInfo {
	ti := TokenInfo{ID: r.ID.String(), Name: r.Name, Type: r.Type.String(), ExpiresAt: time.Unix(r.ExpiresAt, 0).UTC(),
		Scopes: r.Scopes.Strings(), CreatedAt: time.Unix(r.Created, 0).UTC(), AllowedIPs: r.AllowedIPs}
	if r.LastUsed != 0 {
		t := time.Unix(r.LastUsed, 0).UTC()
		ti.LastUsed = &t
	}
	return ti
}

// ListTokens returns the caller's account's active tokens, oldest first.
// last_used is as of the last usage flush.
func (s *Service) ListTokens(c *core.Claims) ([]TokenInfo, error) {
	if e := requireFullAccess(c, "listing tokens"); e != nil {
		return nil, e
	}
	if err := s.store.ReadFence(); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	nb := s.store.revs.NotBefore(c.Account)
	var recs []TokenRecord
	err := s.store.scan(tokenPrefix(c.Account), func(_, v []byte) error {
		var r TokenRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if r.Active(now) && r.Created >= nb {
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Created < recs[j].Created })
	out := make([]TokenInfo, 0, len(recs))
	for i := range recs {
		out = append(out, recs[i].Info())
	}
	return out, nil
}

// RevokeToken revokes the caller's account's token with public id pubID.
// Another account's token id is "not found", like an unknown one.
func (s *Service) RevokeToken(c *core.Claims, pubID string) (*TokenRecord, error) {
	if e := requireFullAccess(c, "revoking tokens"); e != nil {
		return nil, e
	}
	id, err := core.ParseTokenID(pubID)
	if err != nil {
		return nil, notFound("%s", err.Error())
	}
	return s.revoke(c.Account, id, "revoked")
}

// Logout revokes the calling token itself.
func (s *Service) Logout(c *core.Claims) (*TokenRecord, error) {
	return s.revoke(c.Account, c.ID, "logout")
}

func (s *Service) revoke(account uint64, id core.TokenID, why string) (*TokenRecord, error) {
	res, err := s.store.Submit(&Command{Op: OpRevokeToken, At: s.opts.Now().Unix(), Account: account, TokenID: id})
	switch {
	case errors.Is(err, ErrTokenNotFound):
		return nil, notFound("no token %s in your account: list yours with GET /v1/auth/tokens", id)
	case errors.Is(err, ErrTokenRevoked):
		return nil, notFound("token %s is already revoked", id)
	case err != nil:
		return nil, err
	}
	s.log.Info("token "+why, "account", account, "token_id", id.String(), "seq", res.Seq)
	return res.Token, nil
}

// LogoutAll revokes every token of the caller's account, service tokens
// included: tokens issued before now+1s stop working, and tokens minted
// afterwards are issued at or after that epoch. It returns the epoch.
func (s *Service) LogoutAll(c *core.Claims) (time.Time, error) {
	if e := requireFullAccess(c, "logging out everywhere"); e != nil {
		return time.Time{}, e
	}
	nb := s.opts.Now().Unix() + 1
	res, err := s.store.Submit(&Command{Op: OpLogoutAll, At: nb - 1, Account: c.Account, NotBefore: nb})
	if err != nil {
		return time.Time{}, err
	}
	s.log.Info("logout-all", "account", c.Account, "seq", res.Seq)
	return time.Unix(res.Account.NotBefore, 0).UTC(), nil
}

// Refresh returns a successor of the calling token (same name, type,
// scopes, allowlist and lifetime; a new id) and revokes the calling token
// once Options.RefreshGrace has passed.
func (s *Service) Refresh(c *core.Claims) (string, *TokenRecord, error) {
	if e := requireRefreshable(c); e != nil {
		return "", nil, e
	}
	var old TokenRecord
	if err := s.store.get(tokenKey(c.Account, c.ID), &old); err != nil {
		return "", nil, notFound("this token has no record in the issuer: log in again")
	}
	now := s.opts.Now()
	rec := old
	rec.ID = core.NewTokenID()
	rec.Created = s.issueTime(c.Account)
	rec.ExpiresAt = rec.Created + (old.ExpiresAt - old.Created)
	rec.LastUsed, rec.RevokedAt, rec.ReplacedBy, rec.RevokeAt = 0, 0, "", 0
	// Round the end of the grace period up to the second, so the old token
	// works for at least RefreshGrace.
	revokeAt := (now.Add(s.opts.RefreshGrace).UnixNano() + int64(time.Second) - 1) / int64(time.Second)
	res, err := s.store.Submit(&Command{Op: OpRefresh, At: now.Unix(), Account: c.Account, TokenID: c.ID, Token: &rec, RevokeAt: revokeAt})
	switch {
	case errors.Is(err, ErrAlreadyRefreshed):
		return "", nil, &APIError{Status: http.StatusConflict, Code: CodeAlreadyRefreshed,
			Message: "this token was already refreshed: use its successor (it stops working at the end of the grace period)"}
	case errors.Is(err, ErrTokenRevoked), errors.Is(err, ErrTokenNotFound):
		return "", nil, notFound("this token is revoked: log in again")
	case err != nil:
		return "", nil, err
	}
	tok, err := s.mint(res.Token)
	if err == nil {
		s.log.Info("token refreshed", "account", c.Account, "token_id", c.ID.String(), "successor", res.Token.ID.String())
	}
	return tok, res.Token, err
}

// requireRefreshable refuses service tokens, which are rotated instead
// (see the endpoint table in the package documentation).
func requireRefreshable(c *core.Claims) *APIError {
	if c.Type == core.TypeService {
		return forbidden("service tokens are not refreshed: with a full-access token (from POST /v1/auth/login), " +
			"create a new one with POST /v1/auth/tokens, switch to it, then revoke the old one")
	}
	return nil
}

// RetireKey records the retirement of a signing key in the revocation log
// (the keyring itself is retired by the caller).
func (s *Service) RetireKey(id uint16) error {
	_, err := s.store.Submit(&Command{Op: OpRetireKey, At: s.opts.Now().Unix(), KeyID: id})
	return err
}
