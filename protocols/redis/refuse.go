package redis

import "github.com/heliosdb/auth/netio"

var _ netio.LateRefuser = (*Session)(nil)

// refusedCommands is how many commands a refused connection answers
// before it is closed: go-redis sends HELLO and, when HELLO fails with an
// error reply, AUTH on the same connection, and reports AUTH's reply.
const refusedCommands = 3

// RefuseLate makes the session refuse the connection (netio.LateRefuser):
// every command is answered "-ERR max number of clients reached", as Redis
// answers when it has maxclients clients, and the connection is closed
// after the third. Redis writes that error on accept; here it waits for
// the client's first bytes, so that a client starting TLS (the same port
// takes both) reads it inside TLS, and a client that reads the reply to
// HELLO and then sends AUTH reads it again instead of a closed connection.
func (s *Session) RefuseLate() { s.refusing = true }

// refuseCommand answers one command of a refused connection.
func (s *Session) refuseCommand(out []byte) ([]byte, netio.Action) {
	out = s.LimitError(netio.LimitConnections, out)
	if s.refusedCmds++; s.refusedCmds >= refusedCommands {
		return out, netio.Close
	}
	return out, netio.Continue
}
