package issuer

import (
	"log/slog"
	"sync"
	"time"

	"github.com/heliosdb/auth/core"
)

// usage aggregates last-used times in memory and flushes them to the store
// in one command per interval, so authentication never costs a write.
type usage struct {
	shards [16]usageShard
	store  *Store
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type usageShard struct {
	mu sync.Mutex
	m  map[core.TokenID]Use
}

func newUsage(store *Store, every time.Duration, log *slog.Logger) *usage {
	u := &usage{store: store, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	for i := range u.shards {
		u.shards[i].m = map[core.TokenID]Use{}
	}
	go u.run(every)
	return u
}

// record notes a use; it allocates nothing when the token is already in
// the current interval's map.
func (u *usage) record(id core.TokenID, account uint64, at int64) {
	sh := &u.shards[id[0]&15]
	sh.mu.Lock()
	if old, ok := sh.m[id]; !ok || old.At < at {
		sh.m[id] = Use{Account: account, Token: id, At: at}
	}
	sh.mu.Unlock()
}

func (u *usage) run(every time.Duration) {
	defer close(u.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			u.flush()
			return
		case <-t.C:
			u.flush()
		}
	}
}

// flush writes and clears what was aggregated.
func (u *usage) flush() {
	var uses []Use
	for i := range u.shards {
		sh := &u.shards[i]
		sh.mu.Lock()
		for id, use := range sh.m {
			uses = append(uses, use)
			delete(sh.m, id)
		}
		sh.mu.Unlock()
	}
	if len(uses) == 0 {
		return
	}
	if _, err := u.store.Submit(&Command{Op: OpTouch, Uses: uses}); err != nil {
		u.log.Warn("flush last_used", "err", err, "tokens", len(uses))
	}
}

func (u *usage) close() {
	u.once.Do(func() { close(u.stop) })
	<-u.done
}
