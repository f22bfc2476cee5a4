package main

import (
	"crypto/tls"
	"log/slog"
	"sync"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer/feed"
	"github.com/heliosdb/auth/netio"
)

// gatewayDeps is what a protocol front end may need from the daemon. The
// same fields are filled in both roles: in role "all" from the issuer's own
// store, in role "gateway" from the feed follower.
type gatewayDeps struct {
	Config  *Config
	Keyring *core.Keyring
	// Revocations is the revocation view every verifier checks. On a node
	// it fails closed (core.RevocationUnavailable → core.ErrUnavailable)
	// once the feed is staler than Config.StaleAfter.
	Revocations core.RevocationView
	// Policy holds per-token IP allowlists and the databases registry:
	// check verified claims with core.AllowAddr(Policy, &claims, clientAddr)
	// and core.AllowDatabase(Policy, &claims, database). Never nil.
	Policy core.Policy
	// Usage records a successful authentication for last_used: a store
	// into a sharded in-memory map, flushed to the issuer in batches (role
	// all: the issuer's aggregator; role gateway: POST /v1/cluster/usage).
	// It allocates nothing for a token already seen in the interval. Never nil.
	Usage core.UsageRecorder
	// Revoked delivers every applied revocation — feed.KindToken (Token),
	// feed.KindAccount (Account, NotBefore: tokens issued before it) and
	// feed.KindKey (KeyID) — to its subscribers, after the revocation view
	// already answers "revoked", so a subscriber can end the open sessions
	// of that token, account or key. Subscribe before serving. Never nil.
	Revoked *revocationHub
	TLS     *tls.Config
	DataDir string
	Logger  *slog.Logger
	// Upstreams are the databases behind the gateway (proxy mode); its
	// fields are nil for a protocol that runs its built-in responder.
	Upstreams *upstreams
}

// revocationHub fans applied revocations out to subscribers (the gateway's
// session registry ends the sessions they name). Subscribers are called on
// the goroutine that applies revocations (the feed follower, or the local
// log follower in role "all"), in sequence order; they must return quickly
// and must not keep the event after returning.
type revocationHub struct {
	mu   sync.RWMutex
	subs []func(e *feed.Event)
}

// Subscribe adds fn to the subscribers.
func (h *revocationHub) Subscribe(fn func(e *feed.Event)) {
	h.mu.Lock()
	h.subs = append(h.subs, fn)
	h.mu.Unlock()
}

// publish passes e to every subscriber when it is a revocation, or a
// KindSnapshotEnd: the whole view was replaced (a snapshot reload, or the
// node's feed went stale or came back), so every open session is re-checked.
func (h *revocationHub) publish(e *feed.Event) {
	switch e.Kind {
	case feed.KindToken, feed.KindAccount, feed.KindKey, feed.KindSnapshotEnd:
	default:
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, fn := range h.subs {
		fn(e)
	}
}

// protocolFactory builds one protocol front end. Each protocol registers its
// own in a file of this package (proto_<name>.go) from an init function.
// Its listener (flag, TOML key, variable, default address) is the entry of
// internal/listeners with the same name, and its address Config.Listen[name].
type protocolFactory struct {
	// name is the protocol's label, its netio.Protocol's Name ("postgres").
	name string
	// build makes the protocol.
	build func(d *gatewayDeps) (netio.Protocol, error)
}

var protocolFactories []protocolFactory

// registerProtocol adds a protocol front end to the gateway.
func registerProtocol(f protocolFactory) { protocolFactories = append(protocolFactories, f) }
