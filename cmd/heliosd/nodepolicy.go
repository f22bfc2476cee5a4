package main

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/atomicfile"
	"github.com/heliosdb/auth/core/policyset"
	"github.com/heliosdb/auth/issuer/feed"
)

// nodePolicy applies the feed's IP allowlists and database frames to a
// policyset.Set, and keeps a copy in a file (data-dir/node-policy.json) so
// that a node restarted while the issuer is unreachable still knows them.
// A snapshot replaces the registry: databases it does not list are removed
// at its end. Allowlists of revoked tokens stay until the token's expiry
// (the token is refused anyway).
type nodePolicy struct {
	set  *policyset.Set
	path string
	log  *slog.Logger

	mu    sync.Mutex // guards the copy below (apply runs on the follower's goroutine, save on run's)
	dbs   map[string]bool
	ips   map[core.TokenID]savedIPs
	dirty bool

	inSnap   bool // follower goroutine only
	snapshot map[string]bool
}

// savedIPs is one allowlist as the policy file holds it.
type savedIPs struct {
	Token   core.TokenID   `json:"token"`
	IPs     []netip.Prefix `json:"ips"`
	Expires int64          `json:"expires"`
}

// policyFile is the policy file's content.
type policyFile struct {
	Databases  map[string]bool `json:"databases"` // name → test
	Allowlists []savedIPs      `json:"allowlists"`
}

// newNodePolicy returns the policy, loaded from path when the file exists
// ("" keeps nothing on disk).
func newNodePolicy(path string, log *slog.Logger) *nodePolicy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &nodePolicy{set: policyset.New(), path: path, log: log, dbs: map[string]bool{}, ips: map[core.TokenID]savedIPs{}}
	if path == "" {
		return p
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("node policy file unreadable; the issuer's snapshot will replace it", "err", err)
		}
		return p
	}
	var f policyFile
	if err := json.Unmarshal(data, &f); err != nil {
		log.Warn("node policy file unreadable; the issuer's snapshot will replace it", "err", err)
		return p
	}
	now := time.Now().Unix()
	for name, test := range f.Databases {
		p.dbs[name] = test
		p.set.SetDatabase(name, test)
	}
	for _, a := range f.Allowlists {
		if a.Expires >= now {
			p.ips[a.Token] = a
			p.set.SetIPs(a.Token, a.IPs, a.Expires)
		}
	}
	return p
}

// apply runs on the follower's goroutine.
func (p *nodePolicy) apply(e *feed.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case feed.KindSnapshotBegin:
		p.inSnap, p.snapshot = true, map[string]bool{}
	case feed.KindSnapshotEnd:
		for name := range p.dbs {
			if !p.snapshot[name] {
				p.set.DeleteDatabase(name)
				delete(p.dbs, name)
			}
		}
		p.inSnap, p.snapshot, p.dirty = false, nil, true
	case feed.KindIPPolicy:
		p.set.SetIPs(e.Token, e.IPs, e.Expires)
		p.ips[e.Token] = savedIPs{Token: e.Token, IPs: e.IPs, Expires: e.Expires}
		p.dirty = true
	case feed.KindDatabase:
		p.dirty = true
		if e.Deleted {
			p.set.DeleteDatabase(e.Database)
			delete(p.dbs, e.Database)
			return
		}
		p.set.SetDatabase(e.Database, e.Test)
		p.dbs[e.Database] = e.Test
		if p.inSnap {
			p.snapshot[e.Database] = true
		}
	}
}

// run saves changes every two seconds and prunes expired allowlists every
// minute, until ctx ends (then it saves once more).
func (p *nodePolicy) run(ctx context.Context) {
	save := time.NewTicker(2 * time.Second)
	defer save.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			p.save()
			return
		case now := <-save.C:
			if now.Sub(lastPrune) > time.Minute {
				p.set.Prune(now.Unix())
				p.mu.Lock()
				maps.DeleteFunc(p.ips, func(_ core.TokenID, a savedIPs) bool { return a.Expires < now.Unix() })
				p.dirty = true
				p.mu.Unlock()
				lastPrune = now
			}
			p.save()
		}
	}
}

// save writes the policy file (atomically, mode 0600) when it changed.
func (p *nodePolicy) save() {
	p.mu.Lock()
	if !p.dirty || p.path == "" {
		p.mu.Unlock()
		return
	}
	f := policyFile{Databases: p.dbs, Allowlists: make([]savedIPs, 0, len(p.ips))}
	for _, a := range p.ips {
		f.Allowlists = append(f.Allowlists, a)
	}
	data, err := json.Marshal(f)
	p.dirty = false
	p.mu.Unlock()
	if err == nil {
		err = atomicfile.WriteBytes(p.path, 0o600, data)
	}
	if err != nil {
		p.log.Warn("persisting the node policy", "err", err)
	}
}
