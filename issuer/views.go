package issuer

import (
	"maps"
	"net/netip"
	"sync"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/policyset"
)

// policyView is the issuer's policy state: per-token IP allowlists and the
// databases registry. It feeds the process's own gateway through a
// core/policyset.Set (lock-free reads) and keeps the plain lists the feed's
// snapshots are made of. It is written only from the store's apply effects
// and load.
type policyView struct {
	set *policyset.Set

	mu  sync.Mutex
	ips map[core.TokenID]ipRec
	dbs map[string]Database
}

type ipRec struct {
	list    []string
	expires int64
}

func newPolicyView() *policyView {
	return &policyView{set: policyset.New(), ips: map[core.TokenID]ipRec{}, dbs: map[string]Database{}}
}

// parsePrefixes parses an allowlist, skipping entries that do not parse
// (the issuer validated them when the token was created).
func parsePrefixes(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := ParseIPOrCIDR(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func (p *policyView) setIPs(id core.TokenID, list []string, expires int64) {
	p.mu.Lock()
	p.ips[id] = ipRec{list: list, expires: expires}
	p.mu.Unlock()
	p.set.SetIPs(id, parsePrefixes(list), expires)
}

func (p *policyView) delIPs(id core.TokenID) {
	p.mu.Lock()
	_, ok := p.ips[id]
	delete(p.ips, id)
	p.mu.Unlock()
	if ok {
		p.set.DeleteIPs(id)
	}
}

func (p *policyView) setDB(d Database) {
	p.mu.Lock()
	p.dbs[d.Name] = d
	p.mu.Unlock()
	p.set.SetDatabase(d.Name, d.Test)
}

func (p *policyView) delDB(name string) {
	p.mu.Lock()
	delete(p.dbs, name)
	p.mu.Unlock()
	p.set.DeleteDatabase(name)
}

func (p *policyView) db(name string) (Database, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.dbs[name]
	return d, ok
}

// databases returns a copy of the registry.
func (p *policyView) databases() map[string]Database {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.dbs)
}

// allowlists returns a copy of the live allowlists.
func (p *policyView) allowlists() map[core.TokenID]ipRec {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.ips)
}

// prune drops allowlists of tokens that expired before now (Unix seconds).
func (p *policyView) prune(now int64) {
	p.mu.Lock()
	maps.DeleteFunc(p.ips, func(_ core.TokenID, r ipRec) bool { return r.expires < now })
	p.mu.Unlock()
	p.set.Prune(now)
}
