package issuer

import (
	"maps"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer/feed"
)

// FeedSource adapts the store to feed.Source: the revocation log read as
// feed events, and snapshots taken from the in-memory views.
type FeedSource struct{ s *Store }

// FeedSource returns the store as the source of the cluster feed.
func (s *Store) FeedSource() *FeedSource { return &FeedSource{s: s} }

var _ feed.Source = (*FeedSource)(nil)

// LastSeq implements feed.Source.
func (f *FeedSource) LastSeq() uint64 { return f.s.LastSeq() }

// Changed implements feed.Source.
func (f *FeedSource) Changed() <-chan struct{} { return f.s.Changed() }

// Compacted implements feed.Source.
func (f *FeedSource) Compacted() uint64 { return f.s.Compacted() }

// Read implements feed.Source: log entries after after, as events.
func (f *FeedSource) Read(after uint64, limit int) ([]feed.Event, uint64, error) {
	entries, watermark, err := f.s.ReadLog(after, limit)
	if err != nil {
		return nil, 0, err
	}
	events := make([]feed.Event, 0, len(entries))
	for i := range entries {
		if e, ok := EventOf(&entries[i]); ok {
			events = append(events, e)
		}
	}
	// A batch cut short by limit must end at its last entry, not at the
	// watermark, so the caller reads on from there.
	if len(entries) == limit && len(events) < limit && len(entries) > 0 {
		watermark = entries[len(entries)-1].Seq
	}
	return events, watermark, nil
}

// Snapshot implements feed.Source: every live revocation, account epoch,
// retired key, IP allowlist and database, consistent with the returned
// sequence number (the store's views and its watermark change together).
// The views are copied into compact slices under the lock, which holds up
// the writer; the events are built after it is released.
func (f *FeedSource) Snapshot() (uint64, []feed.Event, error) {
	type tokExp struct {
		id  core.TokenID
		exp int64
	}
	s := f.s
	s.viewMu.RLock()
	seq := s.LastSeq()
	r := s.revs
	r.mu.RLock()
	toks := make([]tokExp, 0, len(r.tokens))
	for id, exp := range r.tokens {
		toks = append(toks, tokExp{id, exp})
	}
	accounts, keys := maps.Clone(r.notBefore), maps.Clone(r.keys)
	r.mu.RUnlock()
	ips, dbs := s.pol.allowlists(), s.pol.databases()
	s.viewMu.RUnlock()

	events := make([]feed.Event, 0, len(toks)+len(accounts)+len(keys)+len(ips)+len(dbs))
	for _, t := range toks {
		events = append(events, feed.Event{Kind: feed.KindToken, Seq: seq, Token: t.id, Expires: t.exp})
	}
	for acc, nb := range accounts {
		events = append(events, feed.Event{Kind: feed.KindAccount, Seq: seq, Account: acc, NotBefore: nb})
	}
	for k := range keys {
		events = append(events, feed.Event{Kind: feed.KindKey, Seq: seq, KeyID: k})
	}
	for id, rec := range ips {
		events = append(events, feed.Event{Kind: feed.KindIPPolicy, Seq: seq, Token: id, Expires: rec.expires, IPs: parsePrefixes(rec.list)})
	}
	for _, d := range dbs {
		events = append(events, feed.Event{Kind: feed.KindDatabase, Seq: seq, Database: d.Name, Test: d.Test})
	}
	return seq, events, nil
}

// EventOf converts a log entry to its feed event.
func EventOf(e *LogEntry) (feed.Event, bool) {
	switch e.Kind {
	case LogToken:
		return feed.Event{Kind: feed.KindToken, Seq: e.Seq, Token: e.Token, Expires: e.ExpiresAt}, true
	case LogAccount:
		return feed.Event{Kind: feed.KindAccount, Seq: e.Seq, Account: e.Account, NotBefore: e.NotBefore}, true
	case LogKey:
		return feed.Event{Kind: feed.KindKey, Seq: e.Seq, KeyID: e.KeyID}, true
	case LogIPs:
		return feed.Event{Kind: feed.KindIPPolicy, Seq: e.Seq, Token: e.Token, Expires: e.ExpiresAt, IPs: parsePrefixes(e.IPs)}, true
	case LogDatabase:
		return feed.Event{Kind: feed.KindDatabase, Seq: e.Seq, Database: e.Database, Test: e.Test, Deleted: e.Deleted}, true
	case LogKeyring:
		return feed.Event{Kind: feed.KindKeyring, Seq: e.Seq, KeyID: e.KeyID}, true
	}
	return feed.Event{}, false
}
