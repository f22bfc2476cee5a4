// Proxy mode on the event loop, client to server: the commands that passed
// the checks, forwarded or answered by the gateway as on the goroutine
// path (proxied), without waiting: where that path waits for the server,
// the loop stops reading the client's commands until the reply is there
// (loopProxy.waitFor).

package redis

import (
	"bytes"

	"github.com/heliosdb/auth/netio"
)

// loopProxied is proxied for a session whose proxy runs on its event loop.
func (s *Session) loopProxied(env *netio.Env, cmd command, name []byte, args [][]byte, out []byte) ([]byte, netio.Action) {
	lp := s.lp
	if lp.state != lpReady {
		return appendUpstreamLost(out)
	}
	if s.refusedInMulti(&lp.cmdState, cmd, name) {
		return out, netio.Continue
	}
	switch cmd.id {
	case cmdQuit:
		lp.reply(okReply, 0)
		lp.quit = true
		if lp.settled() {
			return out, netio.Close
		}
		return out, netio.Continue // relay closes once the replies before are out
	case cmdReset:
		lp.reply([]byte("+RESET\r\n"), 2)
		l := lp.sc.login
		lp.queue(appendCommand(nil, "RESET"), true)
		lp.queue(appendCommand(nil, "AUTH", l.user, l.password), true)
		lp.dirty = true
		s.authed, s.proto, s.name, s.db = false, RESP2, nil, 0
		lp.inMulti, lp.txDirty = false, false
		lp.waitFor(waitReset) // until then, replies are read as before RESET
		return out, netio.Continue
	}
	if done, selected, db := s.proxyLocal(env, cmd, args); selected {
		lp.waitDB = db
		lp.waitFor(waitSelect)
		return out, netio.Continue
	} else if done {
		return out, netio.Continue
	}
	if cmd.state || mayBlock(name) {
		lp.noHold = true
	}
	s.forwardChecked(&lp.cmdState, cmd, name, args)
	return out, netio.Continue
}

// cloneHello copies what HELLO's arguments keep past the command (they
// are views of the transport's buffer).
func cloneHello(h helloArgs) *helloArgs {
	c := &helloArgs{proto: h.proto}
	if h.setname != nil {
		c.setname = bytes.Clone(h.setname)
	}
	return c
}

// mayBlock reports whether the server may keep a command's reply back for
// long (blocking list, sorted set and stream reads, WAIT).
func mayBlock(name []byte) bool {
	switch string(name) {
	case "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop",
		"xread", "xreadgroup", "wait", "waitaof":
		return true
	}
	return false
}
