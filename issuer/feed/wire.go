// Package feed carries the issuer's revocation log to gateway nodes: the
// wire format, the issuer-side HTTP handler that streams it, and the
// node-side Follower that applies it to a revset.Set and keeps the node's
// keyring current.
//
// The feed is a long-lived HTTP response (GET /v1/cluster/feed?after=SEQ) of
// length-prefixed binary frames: a snapshot when the follower is new or too
// far behind, then every change in sequence order as it commits, and a
// heartbeat carrying the issuer's watermark every HeartbeatInterval. Nodes
// authenticate with the cluster key (never a user token); key material is
// served only to that credential (GET /v1/cluster/keys) and only over TLS or
// loopback; a node may keep a copy in a 0600 file (FollowerConfig.KeyringPath)
// to restart while the issuer is unreachable. Besides revocations the feed
// carries IP allowlists and the databases registry, which a Follower hands to
// FollowerConfig.OnEvent (snapshots included).
//
// feed must never import netio or protocols, and never logs key material or
// the cluster key.
package feed

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/heliosdb/auth/core"
)

// Kind is the kind of a feed frame.
type Kind uint8

// Frame kinds.
const (
	// KindToken: one token revoked until Expires.
	KindToken Kind = 1
	// KindAccount: an account's not-before epoch (logout-all).
	KindAccount Kind = 2
	// KindKey: a key id retired.
	KindKey Kind = 3
	// KindHeartbeat: the issuer's watermark (Seq) and clock (Time, Unix ms).
	KindHeartbeat Kind = 4
	// KindSnapshotBegin: a full snapshot as of Seq follows (Count entries).
	KindSnapshotBegin Kind = 5
	// KindSnapshotEnd: the snapshot is complete.
	KindSnapshotEnd Kind = 6
	// KindKeyring: the keyring changed (a rotation); fetch it again.
	KindKeyring Kind = 7
	// KindIPPolicy: a token's IP allowlist (kept until Expires).
	KindIPPolicy Kind = 8
	// KindDatabase: a database registered (Database, Test) or removed
	// (Deleted) in the databases registry.
	KindDatabase Kind = 9
)

// MaxDatabaseName bounds a database name on the wire.
const MaxDatabaseName = 255

// Event is one frame.
type Event struct {
	Kind      Kind
	Seq       uint64
	Token     core.TokenID   // KindToken, KindIPPolicy
	Expires   int64          // KindToken, KindIPPolicy (Unix seconds)
	Account   uint64         // KindAccount
	NotBefore int64          // KindAccount (Unix seconds)
	KeyID     uint16         // KindKey
	Time      int64          // KindHeartbeat (Unix milliseconds)
	Count     uint64         // KindSnapshotBegin
	IPs       []netip.Prefix // KindIPPolicy
	Database  string         // KindDatabase
	Test      bool           // KindDatabase
	Deleted   bool           // KindDatabase
}

// maxFrame bounds one frame; a larger length is a protocol error.
const maxFrame = 1 << 16

// AppendFrame appends e's frame to dst: a 4-byte big-endian length, the kind,
// the sequence number, then the kind's fields.
func AppendFrame(dst []byte, e *Event) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(e.Kind))
	dst = binary.BigEndian.AppendUint64(dst, e.Seq)
	switch e.Kind {
	case KindToken:
		dst = append(dst, e.Token[:]...)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.Expires))
	case KindAccount:
		dst = binary.BigEndian.AppendUint64(dst, e.Account)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.NotBefore))
	case KindKey:
		dst = binary.BigEndian.AppendUint16(dst, e.KeyID)
	case KindHeartbeat:
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.Time))
	case KindSnapshotBegin:
		dst = binary.BigEndian.AppendUint64(dst, e.Count)
	case KindIPPolicy:
		dst = append(dst, e.Token[:]...)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.Expires))
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(e.IPs)))
		for _, p := range e.IPs {
			a := p.Addr().AsSlice()
			dst = append(dst, byte(len(a)))
			dst = append(dst, a...)
			dst = append(dst, byte(p.Bits()))
		}
	case KindDatabase:
		var flags byte
		if e.Test {
			flags |= 1
		}
		if e.Deleted {
			flags |= 2
		}
		name := e.Database[:min(len(e.Database), MaxDatabaseName)]
		dst = append(dst, flags, byte(len(name)))
		dst = append(dst, name...)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// ErrFrame reports a malformed frame.
var ErrFrame = errors.New("feed: malformed frame")

// ReadFrame reads one frame from r into e, reusing buf (returned, possibly
// grown). Unknown kinds are returned with only Kind and Seq set, so a newer
// issuer can add kinds that older nodes skip.
func ReadFrame(r *bufio.Reader, buf []byte, e *Event) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 9 || n > maxFrame {
		return buf, fmt.Errorf("%w: length %d", ErrFrame, n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	b := buf[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return buf, err
	}
	*e = Event{Kind: Kind(b[0]), Seq: binary.BigEndian.Uint64(b[1:9])}
	p := b[9:]
	need := func(k int) bool { return len(p) >= k }
	switch e.Kind {
	case KindToken:
		if !need(20) {
			return buf, ErrFrame
		}
		copy(e.Token[:], p)
		e.Expires = int64(binary.BigEndian.Uint64(p[12:]))
	case KindAccount:
		if !need(16) {
			return buf, ErrFrame
		}
		e.Account = binary.BigEndian.Uint64(p)
		e.NotBefore = int64(binary.BigEndian.Uint64(p[8:]))
	case KindKey:
		if !need(2) {
			return buf, ErrFrame
		}
		e.KeyID = binary.BigEndian.Uint16(p)
	case KindHeartbeat:
		if !need(8) {
			return buf, ErrFrame
		}
		e.Time = int64(binary.BigEndian.Uint64(p))
	case KindSnapshotBegin:
		if !need(8) {
			return buf, ErrFrame
		}
		e.Count = binary.BigEndian.Uint64(p)
	case KindIPPolicy:
		if !need(22) {
			return buf, ErrFrame
		}
		copy(e.Token[:], p)
		e.Expires = int64(binary.BigEndian.Uint64(p[12:]))
		count := int(binary.BigEndian.Uint16(p[20:]))
		p = p[22:]
		for i := 0; i < count; i++ {
			if len(p) < 1 || (p[0] != 4 && p[0] != 16) || len(p) < 2+int(p[0]) {
				return buf, ErrFrame
			}
			l := int(p[0])
			addr, _ := netip.AddrFromSlice(p[1 : 1+l])
			pfx, err := addr.Prefix(int(p[1+l]))
			if err != nil {
				return buf, ErrFrame
			}
			e.IPs = append(e.IPs, pfx)
			p = p[2+l:]
		}
	case KindDatabase:
		if !need(2) || len(p) < 2+int(p[1]) {
			return buf, ErrFrame
		}
		e.Test, e.Deleted = p[0]&1 != 0, p[0]&2 != 0
		e.Database = string(p[2 : 2+int(p[1])])
	}
	return buf, nil
}
