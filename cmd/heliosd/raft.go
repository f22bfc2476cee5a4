package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/httpapi"
	"github.com/heliosdb/auth/issuer"
	"github.com/heliosdb/auth/issuer/feed"
	"github.com/heliosdb/auth/issuer/replica"
)

// raftEnabled reports whether the issuer runs as a raft replica (any
// raft_* setting given).
func (c *Config) raftEnabled() bool { return c.RaftID != "" || c.RaftListen != "" || c.RaftPeers != "" }

// validateRaft checks the raft settings (none given: a single issuer).
func (c *Config) validateRaft() error {
	if !c.raftEnabled() {
		return nil
	}
	if c.Role != "all" {
		return errors.New("raft_id, raft_listen and raft_peers are for issuer replicas (role all); a gateway node follows them with --issuer-url URL1,URL2,…")
	}
	if c.RaftID == "" || c.RaftListen == "" {
		return errors.New("an issuer replica needs raft_id (--raft-id) and raft_listen (--raft-listen), and raft_peers (--raft-peers id=host:port,…) to bootstrap")
	}
	peers, err := replica.ParsePeers(c.RaftPeers)
	if err != nil {
		return fmt.Errorf("raft_peers: %w", err)
	}
	if len(peers) > 0 {
		found := false
		for _, p := range peers {
			found = found || p.ID == c.RaftID
		}
		if !found {
			return fmt.Errorf("raft_peers does not name this replica (raft_id %q)", c.RaftID)
		}
	}
	if c.RaftElectionTimeout < 50*time.Millisecond {
		return errors.New("raft_election_timeout must be at least 50ms")
	}
	if c.RaftSnapshotThreshold < 1 || c.RaftTrailingLogs < 1 {
		return errors.New("raft_snapshot_threshold and raft_trailing_logs must be positive")
	}
	return nil
}

// startReplica joins the issuer store to its raft cluster (the store was
// opened Replicated). Raft's log and snapshots live in data-dir/raft. The
// replicas authenticate each other with the cluster key bound to the
// keyring's root key (its lowest id): a replica of another keyring lineage
// (it would mint tokens the others cannot verify) cannot join, while one
// whose keyring file lags behind a rotation still can, and catches up
// (the keyring is replicated state, see issuer.Store.AttachKeyring).
func startReplica(cfg *Config, store *issuer.Store, clusterKey string, ring *core.Keyring, log *slog.Logger) (*replica.Node, error) {
	peers, _ := replica.ParsePeers(cfg.RaftPeers)
	return replica.Start(replica.Config{ID: cfg.RaftID, Listen: cfg.RaftListen, Peers: peers, Dir: filepath.Join(cfg.DataDir, "raft"),
		ClusterKey: clusterKey + "\x00keyring-root:" + rootKeyDigest(ring), Store: store, ElectionTimeout: cfg.RaftElectionTimeout, Logger: log,
		SnapshotThreshold: uint64(cfg.RaftSnapshotThreshold), TrailingLogs: uint64(cfg.RaftTrailingLogs)})
}

// rootKeyDigest is a SHA-256 over the keyring's root key: its lowest id
// and that key's secret. Keys are never removed from a keyring (retiring
// one only marks it), so the root key stays the same through every
// rotation and retirement, on every replica of one keyring.
func rootKeyDigest(ring *core.Keyring) string {
	root := ring.Keys()[0] // Keys is ordered by id, and a keyring is never empty
	h := sha256.New()
	fmt.Fprintf(h, "heliosdb raft keyring root %d:", root.ID)
	h.Write(root.Secret[:])
	return hex.EncodeToString(h.Sum(nil))
}

// withRaft adds the replica's raft state to /healthz:
// "raft": {"state", "leader", "applied", …}.
func withRaft(inner fasthttp.RequestHandler, node *replica.Node) fasthttp.RequestHandler {
	if node == nil {
		return inner
	}
	return func(ctx *fasthttp.RequestCtx) {
		inner(ctx)
		var body map[string]any
		if json.Unmarshal(ctx.Response.Body(), &body) != nil {
			return
		}
		body["raft"] = node.Status()
		b, _ := json.Marshal(body)
		ctx.SetBody(append(b, '\n'))
	}
}

// raftRoutes serves the membership endpoints (cluster key only):
//
//	GET  /v1/cluster/raft          this replica's raft state and the members
//	POST /v1/cluster/raft/add      {"id","addr"}: add a replica (non-voter until caught up, then voter)
//	POST /v1/cluster/raft/remove   {"id"}: remove a replica
func raftRoutes(router interface {
	Public(method, path string, h fasthttp.RequestHandler)
}, fs *feed.Server, node *replica.Node) {
	guard := func(h fasthttp.RequestHandler) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			if !fs.Authorized(ctx) {
				fs.Deny(ctx)
				return
			}
			h(ctx)
		}
	}
	router.Public("GET", "/v1/cluster/raft", guard(func(ctx *fasthttp.RequestCtx) {
		httpapi.WriteJSON(ctx, http.StatusOK, node.Status())
	}))
	change := func(action string) fasthttp.RequestHandler {
		return guard(func(ctx *fasthttp.RequestCtx) {
			var req struct {
				ID   string `json:"id"`
				Addr string `json:"addr"`
			}
			if !httpapi.DecodeJSON(ctx, &req, 4096, true) {
				return
			}
			if req.ID == "" || (action == "add" && req.Addr == "") {
				httpapi.WriteError(ctx, &httpapi.Error{Status: http.StatusBadRequest, Code: httpapi.CodeInvalidRequest,
					Message: `send {"id": "r4", "addr": "host:port"} to add, {"id": "r4"} to remove`})
				return
			}
			if err := node.ChangeMembership(action, req.ID, req.Addr); err != nil {
				httpapi.WriteError(ctx, &httpapi.Error{Status: http.StatusServiceUnavailable, Code: issuer.CodeNoQuorum,
					Message: "raft " + action + " " + req.ID + ": " + err.Error()})
				return
			}
			httpapi.WriteJSON(ctx, http.StatusOK, node.Status())
		})
	}
	router.Public("POST", "/v1/cluster/raft/add", change("add"))
	router.Public("POST", "/v1/cluster/raft/remove", change("remove"))
}

// runRaft is `heliosd raft status|add ID ADDR|remove ID` against a running
// replica's cluster endpoints (authenticated with the cluster key).
func runRaft(args []string, out io.Writer) error {
	usage := "usage: heliosd raft status | add ID HOST:PORT | remove ID [--issuer-url URL] [--cluster-key-file F] [--issuer-ca PEM]"
	fs := commandFlags("heliosd raft", usage, out)
	admin := clusterAdminFlags(fs, "a replica's")
	if len(args) == 0 {
		return errors.New(usage)
	}
	action, rest := args[0], args[1:]
	method, path, body := http.MethodPost, "/v1/cluster/raft/"+action, ""
	switch action {
	case "status":
		method, path = http.MethodGet, "/v1/cluster/raft"
	case "add":
		if len(rest) < 2 || strings.HasPrefix(rest[0], "-") || strings.HasPrefix(rest[1], "-") {
			return errors.New("raft add: name the replica's id and raft address: heliosd raft add r4 10.0.0.4:7000")
		}
		b, _ := json.Marshal(map[string]string{"id": rest[0], "addr": rest[1]})
		body, rest = string(b), rest[2:]
	case "remove":
		if len(rest) < 1 || strings.HasPrefix(rest[0], "-") {
			return errors.New("raft remove: name the replica's id")
		}
		b, _ := json.Marshal(map[string]string{"id": rest[0]})
		body, rest = string(b), rest[1:]
	case "-h", "--help", "help":
		fmt.Fprintln(out, usage)
		return pflag.ErrHelp
	default:
		return fmt.Errorf("raft: unknown action %q\n%s", action, usage)
	}
	if err := fs.Parse(longDashes(fs, rest)); err != nil {
		return suggestFlag(fs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	resp, err := admin.do(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("raft %s: %w", action, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprint(out, string(msg))
	return nil
}
