// Proxy mode, the server connection: taking one from the pool when the
// session starts proxying (and wording the failure to), and giving it back
// (after RESET when the session changed its state) or closing it when the
// session ends.

package redis

import (
	"bufio"
	"context"
	"errors"
	"net"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// reset makes a used server connection as new: RESET (which also logs it
// out, unsubscribes, discards a transaction, unwatches, selects 0, goes
// back to RESP2), then AUTH as its user again.
func (sc *serverConn) reset() error {
	_ = sc.SetDeadline(time.Now().Add(5 * time.Second))
	cmd := appendCommand(nil, "RESET")
	cmd = appendCommand(cmd, "AUTH", sc.login.user, sc.login.password)
	if _, err := sc.Write(cmd); err != nil {
		return err
	}
	r := bufio.NewReaderSize(sc.Conn, 4096)
	for {
		v, err := readReply(r)
		if err != nil {
			return err
		}
		if s, ok := v.(string); ok && s == "RESET" {
			break
		}
		if _, ok := v.([]any); !ok { // only Pub/Sub messages may come first
			return errors.New("redis upstream: unexpected reply before RESET's")
		}
	}
	v, err := readReply(r)
	if err := replyError(v, err); err != nil {
		return err
	}
	if r.Buffered() > 0 {
		return errors.New("redis upstream: unexpected data after RESET")
	}
	return sc.SetDeadline(time.Time{})
}

// closeProxy ends the server side when the client connection ends: the
// server connection goes back to the pool when everything sent was
// answered and nothing failed (after RESET when it is dirty); otherwise it
// is closed.
func (s *Session) closeProxy() {
	px := s.px
	if px == nil {
		return
	}
	px.stop()
	px.mu.Lock()
	reusable := !px.failed && !px.revoked && len(px.wbuf) == 0 && px.queued == 0 && px.answered == px.sent &&
		px.scan.between() && !px.holding && len(px.inj) == 0
	px.mu.Unlock()
	if !reusable {
		px.up.pool.Discard(px.key, px.sc)
		return
	}
	_ = px.sc.SetReadDeadline(time.Time{})
	if !px.dirty && !px.pubsub.Load() {
		px.up.pool.Put(px.key, px.sc)
		return
	}
	go func() {
		if err := px.sc.reset(); err != nil {
			px.up.pool.Discard(px.key, px.sc)
			return
		}
		px.up.pool.Put(px.key, px.sc)
	}()
}

// startProxy is AUTH's (or HELLO … AUTH's) proxy-mode ending: a server
// connection for the token's user, then the pump. The replies the session
// has made so far (out) are written first, so that they keep their place.
func (s *Session) startProxy(env *netio.Env, out []byte) ([]byte, netio.Action) {
	up := s.p.up
	key, out, ok := s.proxyKey(env, out)
	if !ok {
		return out, netio.Close
	}
	if s.info.Client == nil { // cannot happen: Handle offloads first
		s.authed = false
		return AppendError(out, "ERR internal error: the session did not leave its event loop"), netio.Close
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sc, err := up.get(ctx, key)
	if err != nil {
		// go-redis follows a failed HELLO with AUTH on the same
		// connection and reports AUTH's reply: the connection stays open
		// for that second attempt, then closes.
		s.authed = false
		s.upFailures++
		out = appendUpstreamConnectError(out, up, err)
		if s.upFailures >= 2 {
			return out, netio.Close
		}
		return out, netio.Continue
	}
	if len(out) > 0 {
		if _, err := s.info.Client.Write(out); err != nil {
			up.pool.Put(key, sc) // nothing was sent on it
			return out[:0], netio.Close
		}
		out = out[:0]
	}
	px := newProxy(up, key, sc, s.info.Client)
	s.px = px
	go px.pump()
	return out, netio.Continue
}

// proxyKey is the pool key of the server connections the session's user
// takes (upstream.RoleFor), on both paths; when the token's database
// scopes allow no user, the session is unauthenticated, the refusal
// appended to out and ok false (the caller closes).
func (s *Session) proxyKey(env *netio.Env, out []byte) (key upstream.Key, _ []byte, ok bool) {
	role, err := upstream.RoleFor(&s.claims)
	if err != nil {
		s.authed = false
		env.Observer.Authenticated(s.info, &s.claims, err, env.Now) // counted as forbidden
		out = append(out, "-NOPERM "...)
		out = core.AppendError(out, err)
		return key, append(out, ": a Redis session reaches the upstream server as the user its database scopes allow\r\n"...), false
	}
	return upstream.Key{Role: role}, out, true
}

// appendUpstreamConnectError words a failure to get a server connection.
func appendUpstreamConnectError(out []byte, up *Upstream, err error) []byte {
	var se serverError
	var ne net.Error
	switch {
	case errors.Is(err, upstream.ErrExhausted):
		return AppendError(out, "ERR max number of clients reached: every upstream Redis connection of this token's user "+
			"stayed in use; try again, or raise --redis-pool-size")
	case errors.As(err, &se):
		out = append(out, "-ERR the upstream Redis server "...)
		out = append(out, up.Address()...)
		out = append(out, " refused HeliosDB's login: "...)
		out = appendClean(out, []byte(se))
		return append(out, "\r\n"...)
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		out = append(out, "-ERR the upstream Redis server "...)
		out = append(out, up.Address()...)
		return append(out, " did not answer in time; HeliosDB tries again on the next connection\r\n"...)
	}
	out = append(out, "-ERR the upstream Redis server "...)
	out = append(out, up.Address()...)
	out = append(out, " is not available ("...)
	msg := []byte(err.Error())
	if len(msg) > 200 {
		msg = msg[:200]
	}
	out = appendCleanAll(out, msg)
	return append(out, "); HeliosDB tries again on the next connection\r\n"...)
}

// appendCleanAll appends b with CR, LF and control bytes replaced by
// spaces (appendClean without its length limit).
func appendCleanAll(dst, b []byte) []byte {
	for _, c := range b {
		if c < ' ' || c == 0x7f {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}
