package issuer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/heliosdb/auth/core"
)

// UsageAggregator collects last-used times in memory and hands them to a
// flush function once per interval, so authentication never costs a write
// or a request. Record is a store into a sharded map: it allocates nothing
// for a token already recorded in the interval. The issuer flushes into its
// store; a gateway node flushes to the issuer's POST /v1/cluster/usage.
type UsageAggregator struct {
	shards [16]usageShard
	flush  func([]Use) error
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type usageShard struct {
	mu sync.Mutex
	m  map[core.TokenID]Use
}

// NewUsageAggregator starts an aggregator that calls flush every interval
// (and once more on Close) with what was recorded since. Uses whose flush
// fails are recorded again for the next interval.
func NewUsageAggregator(every time.Duration, flush func([]Use) error, log *slog.Logger) *UsageAggregator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &UsageAggregator{flush: flush, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	for i := range u.shards {
		u.shards[i].m = map[core.TokenID]Use{}
	}
	go u.run(every)
	return u
}

// Record notes that token id of account authenticated at at (Unix seconds).
func (u *UsageAggregator) Record(id core.TokenID, account uint64, at int64) {
	sh := &u.shards[id[0]&15]
	sh.mu.Lock()
	if old, ok := sh.m[id]; !ok || old.At < at {
		sh.m[id] = Use{Account: account, Token: id, At: at}
	}
	sh.mu.Unlock()
}

func (u *UsageAggregator) run(every time.Duration) {
	defer close(u.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			u.Flush()
			return
		case <-t.C:
			u.Flush()
		}
	}
}

// Flush hands what was aggregated to the flush function now.
func (u *UsageAggregator) Flush() {
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
	if err := u.flush(uses); err != nil {
		level := slog.LevelWarn
		if errors.Is(err, ErrStorageFull) || errors.Is(err, ErrStorageFailed) {
			level = slog.LevelDebug // the store logged the storage state once
		}
		u.log.Log(context.Background(), level, "flushing last_used", "err", err, "tokens", len(uses))
		for _, x := range uses {
			u.Record(x.Token, x.Account, x.At)
		}
	}
}

// Close flushes once more and stops the aggregator.
func (u *UsageAggregator) Close() {
	u.once.Do(func() { close(u.stop) })
	<-u.done
}

// newUsage is the issuer's own aggregator: one OpTouch command per flush.
func newUsage(store *Store, every time.Duration, log *slog.Logger) *UsageAggregator {
	return NewUsageAggregator(every, func(uses []Use) error {
		_, err := store.Submit(&Command{Op: OpTouch, Uses: uses})
		return err
	}, log)
}
