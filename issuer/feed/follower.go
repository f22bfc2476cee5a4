package feed

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
	"github.com/heliosdb/auth/core/revset"
)

// FollowerConfig configures a gateway node's Follower.
type FollowerConfig struct {
	// IssuerURL is the issuer's base URL ("https://issuer:8080"), or the
	// base URLs of the issuer's raft replicas, comma-separated: the
	// follower reads from one and moves to the next when it fails, and
	// never takes a replica's state older than what it has applied.
	IssuerURL string
	// ClusterKey is the shared cluster credential.
	ClusterKey string
	// CACert is a PEM file of the issuer's certificate (or its CA) to trust;
	// empty uses the system roots.
	CACert string
	// StatePath is where the node persists its revocation set and sequence
	// number; empty disables persistence. The file's modification time is
	// when the node last knew the issuer's state: a restarted node counts
	// its staleness from then.
	StatePath string
	// KeyringPath, when set, is where the node keeps a copy of the issuer's
	// keyring (mode 0600; nodes are trusted with the MAC keys). A node that
	// restarts while the issuer is unreachable then starts with it and its
	// persisted state, verifying within StaleAfter of the state's age, and
	// fails closed after that, instead of not starting at all.
	KeyringPath string
	// StaleAfter is how long the node keeps verifying without hearing from
	// the issuer before it fails closed (default 30s; see EnsureDefaults).
	StaleAfter time.Duration
	// OnEvent, when set, sees every applied event (after the set is updated)
	// on the follower's goroutine: for ending sessions and IP policies. A
	// snapshot reaches it as KindSnapshotBegin, the snapshot's events that
	// are not revocations (IP policies, databases), then KindSnapshotEnd, so
	// a policy holder can replace its state. The event is valid only during
	// the call.
	OnEvent func(*Event)
	// SnapshotOnStart makes the first connection of the process ask for a
	// snapshot even when persisted state was loaded (the persisted state
	// holds revocations only; policy state arrives with the snapshot).
	SnapshotOnStart bool
	// OnStale, when set, is called (on the watchdog's goroutine) each time
	// the node starts or stops failing closed, so open sessions can be
	// re-checked at once rather than at their next command.
	OnStale func(stale bool)
	Logger  *slog.Logger
}

// EnsureDefaults gives every unset field of c its default and returns c:
// StaleAfter 30 s and a Logger that discards.
func (c *FollowerConfig) EnsureDefaults() *FollowerConfig {
	if c.StaleAfter <= 0 {
		c.StaleAfter = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Follower follows the issuer's feed on a gateway node. It is the node's
// core.RevocationView: it answers from its revset.Set, and fails closed
// (RevocationUnavailable) once the feed has been silent past StaleAfter.
type Follower struct {
	cfg    FollowerConfig
	set    *revset.Set
	ring   *core.Keyring
	client *http.Client

	connected atomic.Bool   // a feed connection has delivered a snapshot or a heartbeat
	lastHeard atomic.Int64  // Unix nanoseconds of the last frame
	stale     atomic.Bool   // set by the watchdog, read on the hot path
	issuerSeq atomic.Uint64 // the issuer's watermark from heartbeats
	ready     atomic.Bool
	// keysFresh: the keyring was just fetched by NewFollower (Run's
	// goroutine only); every other connection fetches it again first, since
	// a snapshot carries no keyring changes.
	keysFresh bool
	// urls are the issuer's replicas; cur indexes the one followed.
	urls []string
	cur  atomic.Int32
	// behind counts replicas in a row that offered an older state (Run's
	// goroutine only).
	behind int
}

// errBehind is a replica whose state is older than what the follower
// has applied: the follower moves to another replica.
var errBehind = errors.New("this issuer replica is behind the state already applied; trying another")

// URL returns the base URL of the issuer replica followed now.
func (f *Follower) URL() string { return f.urls[int(f.cur.Load())%len(f.urls)] }

// next moves to the next replica (a no-op with one issuer URL).
func (f *Follower) next() {
	if len(f.urls) > 1 {
		f.cur.Store(int32((int(f.cur.Load()) + 1) % len(f.urls)))
	}
}

// splitURLs splits a comma-separated list of base URLs.
func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		out = []string{s}
	}
	return out
}

// IssuerTransport is an HTTP transport to the issuer's cluster endpoints
// (TLS 1.2 or later) that trusts the PEM certificates in caFile, or the
// system's roots when caFile is empty; a file without a certificate is an
// error, never a silent fall-back.
func IssuerTransport(caFile string) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return tr, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("issuer CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("issuer CA %s holds no certificate", caFile)
	}
	tr.TLSClientConfig.RootCAs = pool
	return tr, nil
}

// Client is the HTTP client the follower reaches the issuer with (its CA,
// its connections), for a node's other calls to the same issuer.
func (f *Follower) Client() *http.Client { return f.client }

// NewFollower makes a follower and fetches the keyring from the issuer
// (retrying until ctx ends). It loads the persisted state, if any, so the
// node can verify at once after a restart.
func NewFollower(ctx context.Context, cfg FollowerConfig) (*Follower, error) {
	cfg.EnsureDefaults()
	tr, err := IssuerTransport(cfg.CACert)
	if err != nil {
		return nil, err
	}
	f := &Follower{cfg: cfg, set: revset.New(0), client: &http.Client{Transport: tr}, urls: splitURLs(cfg.IssuerURL)}
	f.lastHeard.Store(time.Now().UnixNano())
	if cfg.StatePath != "" {
		if seq, entries, err := loadState(cfg.StatePath); err == nil {
			f.set.Load(seq, time.Now().Unix(), entries)
			f.ready.Store(true)
			if st, err := os.Stat(cfg.StatePath); err == nil && st.ModTime().Before(time.Now()) {
				f.lastHeard.Store(st.ModTime().UnixNano())
				f.stale.Store(f.Staleness() > cfg.StaleAfter)
			}
			cfg.Logger.Info("feed state loaded", "seq", seq, "entries", len(entries))
		} else if !errors.Is(err, os.ErrNotExist) {
			cfg.Logger.Warn("feed state unreadable; a snapshot will replace it", "err", err)
		}
	}
	for attempt := 0; ; attempt++ {
		ring, err := f.fetchKeys(ctx)
		if err == nil {
			f.ring, f.keysFresh = ring, true
			f.saveKeys()
			return f, nil
		}
		cfg.Logger.Warn("fetching the keyring from the issuer", "issuer", f.URL(), "err", err)
		f.next()
		if attempt == 0 && cfg.KeyringPath != "" && f.ready.Load() {
			if ring, lerr := keyfile.Load(cfg.KeyringPath); lerr == nil {
				f.ring = ring
				cfg.Logger.Warn("issuer unreachable: starting with the persisted keyring and revocation state",
					"state_age", f.Staleness().Round(time.Millisecond), "stale_after", cfg.StaleAfter)
				return f, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("keyring from %s: %w", cfg.IssuerURL, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Keyring returns the node's keyring, kept in sync with the issuer's.
func (f *Follower) Keyring() *core.Keyring { return f.ring }

// Set returns the revocation set.
func (f *Follower) Set() *revset.Set { return f.set }

// Check implements core.RevocationView.
func (f *Follower) Check(id core.TokenID, account uint64, issuedAt int64, keyID uint16) core.RevocationStatus {
	if f.stale.Load() {
		return core.RevocationUnavailable
	}
	return f.set.Check(id, account, issuedAt, keyID)
}

// Staleness returns how long since the node last heard from the issuer.
func (f *Follower) Staleness() time.Duration {
	return time.Duration(time.Now().UnixNano() - f.lastHeard.Load())
}

// Stale reports whether the node fails closed.
func (f *Follower) Stale() bool { return f.stale.Load() }

// Ready reports whether the node holds a complete revocation set.
func (f *Follower) Ready() bool { return f.ready.Load() }

// Seq returns the last applied sequence number and the issuer's watermark
// as last heard.
func (f *Follower) Seq() (applied, issuer uint64) { return f.set.Seq(), f.issuerSeq.Load() }

func (f *Follower) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL()+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "HeliosCluster "+f.cfg.ClusterKey)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, body)
	}
	return resp, nil
}

// FetchJSON GETs one of the issuer's cluster endpoints (path, e.g.
// "/v1/cluster/upstreams") with the cluster key, over the follower's
// connection settings, and decodes its JSON body into v.
func (f *Follower) FetchJSON(ctx context.Context, path string, v any) error {
	resp, err := f.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// saveKeys writes the keyring to KeyringPath (0600), when set.
func (f *Follower) saveKeys() {
	if f.cfg.KeyringPath == "" {
		return
	}
	if err := keyfile.Save(f.cfg.KeyringPath, f.ring); err != nil {
		f.cfg.Logger.Warn("persisting the keyring", "err", err)
	}
}

// refreshKeys fetches the keyring and applies it to the node's.
func (f *Follower) refreshKeys(ctx context.Context) error {
	ring, err := f.fetchKeys(ctx)
	if err != nil {
		return err
	}
	if err := keyfile.Sync(f.ring, ring); err != nil {
		return err
	}
	f.saveKeys()
	return nil
}

func (f *Follower) fetchKeys(ctx context.Context) (*core.Keyring, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := f.get(ctx, "/v1/cluster/keys")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return keyfile.Parse(data)
}

// Run follows the feed until ctx ends, reconnecting with backoff, persisting
// state, rebuilding the set to drop expired entries, and watching staleness.
func (f *Follower) Run(ctx context.Context) {
	go f.watchdog(ctx)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := f.follow(ctx)
		if ctx.Err() != nil {
			break
		}
		f.cfg.Logger.Warn("issuer feed interrupted", "issuer", f.URL(), "err", err, "staleness", f.Staleness().Round(time.Millisecond))
		if time.Since(start) > 5*time.Second {
			backoff = 50 * time.Millisecond
		}
		if len(f.urls) > 1 {
			// Another replica at once; back off only once each has failed.
			f.next()
			if f.cur.Load() != 0 {
				continue
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
	f.persist()
}

// watchdog flips the fail-closed flag, persists state and rebuilds the set.
func (f *Follower) watchdog(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastSaved, lastRebuild := f.set.Seq(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			stale := f.Staleness() > f.cfg.StaleAfter
			if stale != f.stale.Swap(stale) {
				if stale {
					f.cfg.Logger.Error("issuer unreachable past the staleness bound: failing closed", "bound", f.cfg.StaleAfter)
				} else {
					f.cfg.Logger.Info("issuer feed restored")
				}
				if f.cfg.OnStale != nil {
					f.cfg.OnStale(stale)
				}
			}
			if seq := f.set.Seq(); seq != lastSaved && now.Second()%2 == 0 {
				f.persist()
				lastSaved = seq
			}
			if now.Sub(lastRebuild) > time.Minute {
				f.set.Rebuild(now.Unix())
				lastRebuild = now
			}
		}
	}
}

func (f *Follower) persist() {
	if f.cfg.StatePath == "" || !f.ready.Load() {
		return
	}
	seq, entries := f.set.Entries()
	if err := saveState(f.cfg.StatePath, seq, entries); err != nil {
		f.cfg.Logger.Warn("persisting feed state", "err", err)
	}
}

// follow runs one feed connection.
func (f *Follower) follow(ctx context.Context) error {
	if !f.keysFresh {
		if err := f.refreshKeys(ctx); err != nil {
			return err
		}
	}
	f.keysFresh = false
	after := uint64(0)
	if f.ready.Load() && (!f.cfg.SnapshotOnStart || f.connected.Load()) {
		after = f.set.Seq()
	}
	resp, err := f.get(ctx, "/v1/cluster/feed?after="+strconv.FormatUint(after, 10))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	go func() { <-ctx.Done(); resp.Body.Close() }()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var (
		buf      []byte
		e        Event
		batch    []revset.Entry
		batchSeq uint64
		events   []Event
		snapshot []revset.Entry
		inSnap   bool
	)
	for {
		buf, err = ReadFrame(r, buf, &e)
		if err != nil {
			return err
		}
		f.lastHeard.Store(time.Now().UnixNano())
		if inSnap {
			if e.Kind == KindSnapshotEnd && e.Seq < f.set.Seq() && f.ready.Load() && len(f.urls) > 1 && f.behind < len(f.urls) {
				// A replica behind the state applied: never go back.
				f.behind++
				return fmt.Errorf("%w (its snapshot is at %d, this node at %d)", errBehind, e.Seq, f.set.Seq())
			}
			if e.Kind == KindSnapshotEnd {
				f.behind = 0
				f.set.Load(e.Seq, time.Now().Unix(), snapshot)
				snapshot, inSnap = nil, false
				f.ready.Store(true)
				f.connected.Store(true)
				if f.cfg.OnEvent != nil {
					f.cfg.OnEvent(&e)
				}
				f.cfg.Logger.Info("revocation snapshot loaded", "seq", e.Seq, "entries", f.set.Stats().Tokens)
			} else if en, ok := entryOf(&e); ok {
				snapshot = append(snapshot, en)
			} else if f.cfg.OnEvent != nil {
				f.cfg.OnEvent(&e)
			}
			continue
		}
		switch e.Kind {
		case KindSnapshotBegin:
			inSnap, snapshot = true, make([]revset.Entry, 0, min(e.Count, 1<<24))
			if f.cfg.OnEvent != nil {
				f.cfg.OnEvent(&e)
			}
		case KindHeartbeat:
			f.connected.Store(true)
			f.issuerSeq.Store(e.Seq)
			batchSeq = max(batchSeq, e.Seq)
		case KindKeyring:
			if err := f.refreshKeys(ctx); err != nil {
				return err
			}
			batchSeq = max(batchSeq, e.Seq)
		default:
			if en, ok := entryOf(&e); ok {
				batch = append(batch, en)
			}
			batchSeq = max(batchSeq, e.Seq)
			if f.cfg.OnEvent != nil {
				events = append(events, e)
			}
		}
		// Apply what has arrived once the stream pauses, so a burst becomes
		// one snapshot swap rather than one per revocation.
		if r.Buffered() == 0 && batchSeq > 0 {
			f.set.Apply(batchSeq, time.Now().Unix(), batch...)
			for i := range events {
				f.cfg.OnEvent(&events[i])
			}
			batch, events, batchSeq = batch[:0], events[:0], 0
		}
	}
}

// entryOf converts a revocation event to a revset entry.
func entryOf(e *Event) (revset.Entry, bool) {
	switch e.Kind {
	case KindToken:
		return revset.Entry{Kind: revset.KindToken, ID: e.Token, Expires: e.Expires}, true
	case KindAccount:
		return revset.Entry{Kind: revset.KindAccount, Account: e.Account, NotBefore: e.NotBefore}, true
	case KindKey:
		return revset.Entry{Kind: revset.KindKey, KeyID: e.KeyID}, true
	}
	return revset.Entry{}, false
}
