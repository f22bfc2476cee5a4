package replica

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/heliosdb/auth/issuer"
)

// Forwarding: a replica that is not the leader sends the serialized
// command (or a read-index request) to the leader over a mutual-TLS
// connection on the raft port. Frames: request = op (1 byte), length
// (4 bytes, big-endian), payload; answer = status (0 ok, 1 error),
// length, payload (JSON).
const (
	opApply      = 'A' // payload: a serialized issuer command → wireApplied
	opReadIndex  = 'I' // → the leader's commit index, 8 bytes
	opMembership = 'M' // payload: membershipRequest → "ok"
	opApplied    = 'P' // → this replica's applied index, 8 bytes (catch-up progress)
	maxFrame     = 16 << 20
)

// sentinels are the command errors a forwarded answer can carry, matched
// by errors.Is on the replica that forwarded it.
var sentinels = []error{issuer.ErrEmailTaken, issuer.ErrNoAccount, issuer.ErrTokenNotFound, issuer.ErrTokenRevoked,
	issuer.ErrAlreadyRefreshed, issuer.ErrClosed, issuer.ErrDatabaseExists, issuer.ErrNoDatabase,
	issuer.ErrKeyConflict}

// wireError is an error crossing between replicas.
type wireError struct {
	Sentinel int    `json:"sentinel,omitempty"` // index+1 in sentinels
	Storage  bool   `json:"storage,omitempty"`
	Failed   bool   `json:"failed,omitempty"`
	Free     uint64 `json:"free,omitempty"`
	Need     uint64 `json:"need,omitempty"`
	Replica  bool   `json:"replica,omitempty"`
	Msg      string `json:"msg"`
}

type wireApplied struct {
	Result issuer.Result `json:"result"`
	Err    *wireError    `json:"err,omitempty"`
	// Index is the command's raft index: the forwarding replica waits
	// until it has applied it too before it answers (read your writes).
	Index uint64 `json:"index,omitempty"`
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	for i, s := range sentinels {
		if errors.Is(err, s) {
			return &wireError{Sentinel: i + 1, Msg: err.Error()}
		}
	}
	var se *issuer.StorageError
	if errors.As(err, &se) {
		return &wireError{Storage: true, Failed: se.Failed, Free: se.Free, Need: se.Need, Msg: err.Error()}
	}
	var re *issuer.ReplicaError
	if errors.As(err, &re) {
		return &wireError{Replica: true, Msg: re.Cause}
	}
	return &wireError{Msg: err.Error()}
}

func (w *wireError) err() error {
	switch {
	case w == nil:
		return nil
	case w.Sentinel > 0 && w.Sentinel <= len(sentinels):
		return sentinels[w.Sentinel-1]
	case w.Storage:
		return &issuer.StorageError{Failed: w.Failed, Free: w.Free, Need: w.Need, Cause: "on the leader"}
	case w.Replica:
		return &issuer.ReplicaError{Cause: w.Msg}
	}
	return errors.New("issuer leader: " + w.Msg)
}

func writeFrame(w *bufio.Writer, tag byte, payload []byte) error {
	var hdr [5]byte
	hdr[0] = tag
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := w.Write(payload); err != nil {
		return err
	}
	return w.Flush()
}

func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("raft forward: a %d-byte frame", n)
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return hdr[0], p, err
}

// serveForward answers one forwarding connection's requests, in order,
// until the peer closes it.
func (n *Node) serveForward(c net.Conn) {
	defer c.Close()
	select {
	case <-n.started:
	case <-time.After(5 * time.Second):
		return // raft did not start (the replica failed to start)
	}
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		op, p, err := readFrame(r)
		if err != nil {
			return
		}
		var out []byte
		var ferr error
		switch op {
		case opApply:
			res, idx, err := n.proposeLocal(p)
			out, _ = json.Marshal(wireApplied{Result: res, Err: toWire(err), Index: idx})
		case opReadIndex:
			var idx uint64
			if idx, ferr = n.leaderReadIndex(); ferr == nil {
				out = binary.BigEndian.AppendUint64(nil, idx)
			}
		case opApplied:
			out = binary.BigEndian.AppendUint64(nil, n.raft.AppliedIndex())
		case opMembership:
			var m membershipRequest
			if ferr = json.Unmarshal(p, &m); ferr == nil {
				ferr = n.changeLocal(m)
			}
			out = []byte("ok")
		default:
			ferr = fmt.Errorf("raft forward: unknown op %q", op)
		}
		status := byte(0)
		if ferr != nil {
			status, out = 1, mustJSON(toWire(ferr))
		}
		if err := writeFrame(w, status, out); err != nil {
			return
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// fwdConn is an idle forwarding connection to one leader.
type fwdConn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

// fwdPool keeps idle forwarding connections by address.
type fwdPool struct {
	mu   sync.Mutex
	idle map[string][]*fwdConn
}

func (p *fwdPool) get(addr string) *fwdConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[addr]
	if len(l) == 0 {
		return nil
	}
	c := l[len(l)-1]
	p.idle[addr] = l[:len(l)-1]
	return c
}

func (p *fwdPool) put(c *fwdConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle == nil {
		p.idle = map[string][]*fwdConn{}
	}
	if len(p.idle[c.addr]) >= 64 {
		c.c.Close()
		return
	}
	p.idle[c.addr] = append(p.idle[c.addr], c)
}

func (p *fwdPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.idle {
		for _, c := range l {
			c.c.Close()
		}
	}
	p.idle = nil
}

// errUnsent is a forward that failed before the leader could have seen
// the request (safe to retry anywhere).
type errUnsent struct{ error }

// call sends one request to the replica at addr and returns its answer.
// An error of type errUnsent means nothing reached the leader.
func (n *Node) call(addr string, op byte, payload []byte, deadline time.Time) ([]byte, error) {
	c := n.pool.get(addr)
	reused := c != nil
	if c == nil {
		conn, err := n.layer.dial(addr, connForward, time.Until(deadline))
		if err != nil {
			return nil, errUnsent{err}
		}
		c = &fwdConn{addr: addr, c: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn)}
	}
	_ = c.c.SetDeadline(deadline)
	if err := writeFrame(c.w, op, payload); err != nil {
		c.c.Close()
		if reused {
			return nil, errUnsent{err} // a stale pooled connection: nothing was read by the peer
		}
		return nil, err
	}
	status, out, err := readFrame(c.r)
	if err != nil {
		// The leader may have applied the request before it went away.
		c.c.Close()
		return nil, err
	}
	_ = c.c.SetDeadline(time.Time{})
	n.pool.put(c)
	if status != 0 {
		var we wireError
		if json.Unmarshal(out, &we) != nil {
			return nil, errors.New("raft forward: unreadable error")
		}
		return nil, we.err()
	}
	return out, nil
}
