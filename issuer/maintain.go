package issuer

import (
	"errors"
	"time"
)

// maintainEvery is how often the store revokes refreshed tokens whose grace
// period ended; expired revocations and allowlists are pruned from memory
// every minute and the log compacted every compactEvery.
const maintainEvery = 500 * time.Millisecond

// maintain runs until stop is closed.
func (s *Store) maintain(stop <-chan struct{}, finished chan<- struct{}) {
	defer close(finished)
	t := time.NewTicker(maintainEvery)
	defer t.Stop()
	lastPrune, lastCompact := time.Now(), time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if s.leads() {
				s.revokeDue(now)
			}
			if now.Sub(lastPrune) > time.Minute {
				s.revs.Prune(now.Unix())
				s.pol.prune(now.Unix())
				lastPrune = now
			}
			if now.Sub(lastCompact) > compactEvery && s.leads() {
				if _, err := s.Compact(now); err != nil && !errors.Is(err, ErrClosed) {
					s.log.Warn("compacting the revocation log", "err", err)
				}
				lastCompact = now
			}
		}
	}
}

// revokeDue revokes every refreshed token whose grace period has ended.
func (s *Store) revokeDue(now time.Time) {
	type due struct {
		id      [12]byte
		account uint64
	}
	var list []due
	s.pendingMu.Lock()
	for id, p := range s.pending {
		if p.At <= now.Unix() {
			list = append(list, due{id, p.Account})
		}
	}
	s.pendingMu.Unlock()
	for _, d := range list {
		_, err := s.Submit(&Command{Op: OpRevokeToken, At: now.Unix(), Account: d.account, TokenID: d.id})
		switch {
		case err == nil:
		case errors.Is(err, ErrTokenRevoked), errors.Is(err, ErrTokenNotFound):
			s.pendingMu.Lock()
			delete(s.pending, d.id)
			s.pendingMu.Unlock()
		case errors.Is(err, ErrClosed):
			return
		case errors.Is(err, ErrStorageFull), errors.Is(err, ErrStorageFailed):
			// Retried every tick; the store logged the storage state once.
			return
		default:
			s.log.Error("revoke refreshed token", "err", err)
		}
	}
}
