package issuer

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core/keyfile"
	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/heliosdb/auth/issuer/feed"
)

// Cluster endpoints, all authenticated with the cluster key
// ("Authorization: HeliosCluster <key>", the contents of the issuer's
// data-dir/cluster.key), never with a user token:
//
//	GET  /v1/cluster/feed?after=SEQ   the revocation and policy feed (feed.Server)
//	GET  /v1/cluster/keys             the keyring (MAC keys: only over TLS or from plaintext_allow networks)
//	POST /v1/cluster/keys/rotate      add a signing key; the old keys keep verifying
//	POST /v1/cluster/keys/retire      {"id":N}: every token signed by key N stops working on every node
//	POST /v1/cluster/usage            {"uses":[{"account","token","at"}]}: nodes flush last_used
//
// An operator rotates with
//
//	curl -X POST -H "Authorization: HeliosCluster $(cat data/cluster.key)" http://127.0.0.1:8080/v1/cluster/keys/rotate
//
// The HTTP listener serves plaintext only to the plaintext_allow networks
// (loopback by default), so key material never crosses a network in clear.

// keyMu serializes keyring changes (the file and the log entry go together).
var keyMu sync.Mutex

// CodeKeyNotFound and CodeSigningKey are key management's error codes.
const (
	CodeKeyNotFound = "KEY_NOT_FOUND"
	CodeSigningKey  = "SIGNING_KEY"
)

// MaxUsageBody bounds a usage flush from a node.
const MaxUsageBody = 1 << 20

// RotateKey adds a fresh signing key to the keyring, saves the keyring file
// (0600) and records the change in the log, so every node fetches the new
// keyring. Tokens already issued keep verifying under their key.
func (s *Service) RotateKey() (id uint16, seq uint64, err error) {
	keyMu.Lock()
	defer keyMu.Unlock()
	if s.store.Replicated() {
		return s.rotateReplicated()
	}
	id, err = s.ring.Rotate(s.opts.Now())
	if err != nil {
		return 0, 0, err
	}
	if s.opts.KeyringPath != "" {
		if err := keyfile.Save(s.opts.KeyringPath, s.ring); err != nil {
			return 0, 0, err
		}
	}
	res, err := s.store.Submit(&Command{Op: OpKeyring, At: s.opts.Now().Unix(), KeyID: id})
	if err != nil {
		return 0, 0, err
	}
	s.log.Info("signing key rotated", "key_id", id, "seq", res.Seq)
	return id, res.Seq, nil
}

// RetireKeyID retires key id in the keyring (saved, 0600) and in the
// revocation log, followed by a keyring change: every token signed with it
// fails on every node. The signing key cannot be retired (rotate first).
// It returns the retirement's sequence number.
func (s *Service) RetireKeyID(id uint16) (uint64, error) {
	keyMu.Lock()
	defer keyMu.Unlock()
	if s.store.Replicated() {
		return s.retireReplicated(id)
	}
	if s.ring.Lookup(id) == nil {
		return 0, &APIError{Status: http.StatusNotFound, Code: CodeKeyNotFound, Message: fmt.Sprintf("no key %d in the keyring", id)}
	}
	if s.ring.Signing().ID == id {
		return 0, &APIError{Status: http.StatusConflict, Code: CodeSigningKey,
			Message: fmt.Sprintf("key %d is the signing key: rotate first (POST /v1/cluster/keys/rotate), then retire it", id)}
	}
	if err := s.ring.Retire(id); err != nil {
		return 0, err
	}
	if s.opts.KeyringPath != "" {
		if err := keyfile.Save(s.opts.KeyringPath, s.ring); err != nil {
			return 0, err
		}
	}
	res, err := s.store.Submit(&Command{Op: OpRetireKey, At: s.opts.Now().Unix(), KeyID: id})
	if err != nil {
		return 0, err
	}
	// Nodes revoke the key's tokens from the log entry at once; the keyring
	// change makes them fetch the keyring so their copy marks it retired.
	if _, err := s.store.Submit(&Command{Op: OpKeyring, At: s.opts.Now().Unix(), KeyID: s.ring.Signing().ID}); err != nil {
		return 0, err
	}
	s.log.Info("signing key retired", "key_id", id, "seq", res.Seq)
	return res.Seq, nil
}

type retireRequest struct {
	ID *uint16 `json:"id"`
}

// ClusterRoutes returns the cluster endpoints (public routes: each checks
// the cluster key through fs).
func (s *Service) ClusterRoutes(fs *feed.Server) []httpapi.Route {
	guard := func(h fasthttp.RequestHandler) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			if !fs.Authorized(ctx) {
				fs.Deny(ctx)
				return
			}
			h(ctx)
		}
	}
	return []httpapi.Route{
		{Method: "GET", Path: "/v1/cluster/feed", Public: fs.ServeFeed},
		{Method: "GET", Path: "/v1/cluster/keys", Public: fs.ServeKeys},
		{Method: "POST", Path: "/v1/cluster/keys/rotate", Public: guard(s.handleRotate)},
		{Method: "POST", Path: "/v1/cluster/keys/retire", Public: guard(s.handleRetire)},
		{Method: "POST", Path: "/v1/cluster/usage", Public: guard(s.handleUsage)},
	}
}

func (s *Service) handleRotate(ctx *fasthttp.RequestCtx) {
	if !decodeBody(ctx, &struct{}{}, false) {
		return
	}
	id, seq, err := s.RotateKey()
	if err != nil {
		s.fail(ctx, err)
		return
	}
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"signing_key": id, "seq": seq})
}

func (s *Service) handleRetire(ctx *fasthttp.RequestCtx) {
	var req retireRequest
	if !decodeBody(ctx, &req, true) {
		return
	}
	if req.ID == nil {
		httpapi.WriteError(ctx, badRequest(CodeInvalidRequest, `send the key id to retire: {"id": 1}`))
		return
	}
	seq, err := s.RetireKeyID(*req.ID)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"retired": *req.ID, "seq": seq})
}

// UsageBatch is the body of POST /v1/cluster/usage.
type UsageBatch struct {
	Uses []Use `json:"uses"`
}

func (s *Service) handleUsage(ctx *fasthttp.RequestCtx) {
	var b UsageBatch
	if !httpapi.DecodeJSON(ctx, &b, MaxUsageBody, true) {
		return
	}
	for _, u := range b.Uses {
		s.usage.Record(u.Token, u.Account, u.At)
	}
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"accepted": len(b.Uses)})
}
