package feed

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
)

// HeartbeatInterval is how often the feed tells a follower the issuer's
// watermark when nothing else happens.
const HeartbeatInterval = 250 * time.Millisecond

// readBatch bounds the events read from the source at once.
const readBatch = 4096

// Source is the issuer side of the feed: its revocation log and a snapshot.
type Source interface {
	// LastSeq is the committed watermark.
	LastSeq() uint64
	// Changed returns a channel closed at the next commit that moves LastSeq.
	Changed() <-chan struct{}
	// Read returns up to limit events with Seq > after, in order, and the
	// watermark they were read at.
	Read(after uint64, limit int) (events []Event, watermark uint64, err error)
	// Snapshot returns every live entry (revoked tokens not yet expired,
	// account epochs, retired keys, IP policies) as of the returned seq.
	Snapshot() (seq uint64, events []Event, err error)
	// Compacted returns the highest seq dropped from the log: a follower
	// behind it needs a snapshot.
	Compacted() uint64
}

// Server serves the feed and the keyring to nodes holding the cluster key.
type Server struct {
	Source  Source
	Keyring *core.Keyring
	// ClusterKey is the shared cluster credential nodes present.
	ClusterKey string
	// Stop, when closed, ends every stream (graceful shutdown).
	Stop <-chan struct{}
	// CatchUp is how long a stream asked for a sequence number beyond the
	// source's waits for the source to reach it before answering with a
	// snapshot: on an issuer replica a moment behind the one a node
	// followed before (0: no wait, a single issuer).
	CatchUp time.Duration
	// Serving, when set, must return nil for the feed to be served: an
	// issuer replica cut off from its cluster's leader refuses new
	// streams (503) and ends open ones at the next heartbeat, so nodes
	// move to a replica that still learns revocations.
	Serving func() error
}

// authorized checks the "Authorization: HeliosCluster <key>" header in
// constant time.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	h := ctx.Request.Header.Peek("Authorization")
	const scheme = "HeliosCluster "
	if len(h) <= len(scheme) || !strings.EqualFold(string(h[:len(scheme)]), scheme) || s.ClusterKey == "" {
		return false
	}
	return subtle.ConstantTimeCompare(h[len(scheme):], []byte(s.ClusterKey)) == 1
}

// Authorized reports whether the request carries the cluster key, for the
// issuer's other cluster endpoints (key management, usage ingest).
func (s *Server) Authorized(ctx *fasthttp.RequestCtx) bool { return s.authorized(ctx) }

// Deny answers 401 for a request without the cluster key.
func (s *Server) Deny(ctx *fasthttp.RequestCtx) { s.deny(ctx) }

func (s *Server) deny(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusUnauthorized)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"error":{"code":"AUTH_REQUIRED","message":"the cluster feed needs the cluster key (Authorization: HeliosCluster <key>); user tokens are not accepted"}}`)
}

// ServeKeys answers GET /v1/cluster/keys with the keyring file. The caller
// must only route it over TLS or from loopback.
func (s *Server) ServeKeys(ctx *fasthttp.RequestCtx) {
	if !s.authorized(ctx) {
		s.deny(ctx)
		return
	}
	data, err := keyfile.Marshal(s.Keyring)
	if err != nil {
		ctx.Error("keyring unavailable", fasthttp.StatusInternalServerError)
		return
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetContentType("application/json")
	ctx.SetBody(data)
}

// ServeFeed answers GET /v1/cluster/feed?after=SEQ with the stream.
func (s *Server) ServeFeed(ctx *fasthttp.RequestCtx) {
	if !s.authorized(ctx) {
		s.deny(ctx)
		return
	}
	after, err := strconv.ParseUint(string(ctx.QueryArgs().Peek("after")), 10, 64)
	if err != nil && len(ctx.QueryArgs().Peek("after")) > 0 {
		ctx.Error("after must be a sequence number", fasthttp.StatusBadRequest)
		return
	}
	if s.Serving != nil {
		if err := s.Serving(); err != nil {
			ctx.Error("this issuer replica cannot serve the feed now: "+err.Error(), fasthttp.StatusServiceUnavailable)
			return
		}
	}
	ctx.SetContentType("application/x-helios-feed")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) { _ = s.stream(w, after) })
}

// stream writes the feed to w until the client goes away or Stop closes.
func (s *Server) stream(w *bufio.Writer, after uint64) error {
	var buf []byte
	write := func(e *Event) error {
		buf = AppendFrame(buf[:0], e)
		_, err := w.Write(buf)
		return err
	}
	if s.CatchUp > 0 && after > s.Source.LastSeq() {
		wait := time.NewTimer(s.CatchUp)
		for after > s.Source.LastSeq() {
			changed := s.Source.Changed()
			if after <= s.Source.LastSeq() {
				break
			}
			select {
			case <-changed:
				continue
			case <-wait.C:
			case <-s.Stop:
			}
			break
		}
		wait.Stop()
	}
	if after == 0 || after < s.Source.Compacted() || after > s.Source.LastSeq() {
		seq, events, err := s.Source.Snapshot()
		if err != nil {
			return err
		}
		if err := write(&Event{Kind: KindSnapshotBegin, Seq: seq, Count: uint64(len(events))}); err != nil {
			return err
		}
		for i := range events {
			if err := write(&events[i]); err != nil {
				return err
			}
		}
		if err := write(&Event{Kind: KindSnapshotEnd, Seq: seq}); err != nil {
			return err
		}
		after = seq
	}
	heartbeat := time.NewTicker(HeartbeatInterval)
	defer heartbeat.Stop()
	for {
		changed := s.Source.Changed()
		events, watermark, err := s.Source.Read(after, readBatch)
		if err != nil {
			return err
		}
		for i := range events {
			if err := write(&events[i]); err != nil {
				return err
			}
		}
		if len(events) == readBatch {
			after = events[len(events)-1].Seq
			continue
		}
		after = max(after, watermark)
		if err := write(&Event{Kind: KindHeartbeat, Seq: after, Time: time.Now().UnixMilli()}); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if s.Serving != nil {
			if err := s.Serving(); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-heartbeat.C:
		case <-s.Stop:
			return nil
		}
	}
}

// ClusterKeyFile is the cluster key's file name in the issuer's data directory.
const ClusterKeyFile = "cluster.key"

// LoadOrCreateClusterKey reads the cluster key at path, or creates one (32
// random bytes, hex, mode 0600). It refuses a file others can read.
func LoadOrCreateClusterKey(path string) (string, error) {
	data, err := readSecretFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		key := hex.EncodeToString(b[:])
		if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write cluster key %s: %w", path, err)
		}
		return key, nil
	}
	return data, err
}

// ReadClusterKey reads a node's copy of the cluster key.
func ReadClusterKey(path string) (string, error) { return readSecretFile(path) }

func readSecretFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("cluster key %s: mode %#o lets other users read it; run chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(data))
	if len(key) < 32 {
		return "", fmt.Errorf("cluster key %s is too short (want at least 32 characters)", path)
	}
	return key, nil
}
