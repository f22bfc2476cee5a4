package redis

import (
	"testing"

	"github.com/heliosdb/auth/netio"
)

// TestRefuseLate: a refused connection answers each command (go-redis's
// HELLO, then its AUTH) with Redis's maxclients error, authenticates
// nothing, and closes after the third.
func TestRefuseLate(t *testing.T) {
	f := newFixture(t)
	s := newSession(true)
	s.RefuseLate()
	tok := f.live(t, 0)
	const want = "-ERR max number of clients reached\r\n"
	out, act := run(t, f, s, cmd("HELLO", "3", "AUTH", "default", tok))
	if out != want || act != netio.Continue {
		t.Fatalf("HELLO: %q %v", out, act)
	}
	out, act = run(t, f, s, cmd("AUTH", "default", tok)+cmd("PING"))
	if out != want+want || act != netio.Close {
		t.Fatalf("AUTH, PING: %q %v", out, act)
	}
	if s.Authenticated() || len(f.obs.outcomes) != 0 {
		t.Fatalf("refused session authenticated=%v outcomes=%v", s.Authenticated(), f.obs.outcomes)
	}
}

// TestRefuseLatePlaintextFromRemote: a refused client that sent its
// command in plaintext from an address that must use TLS still hears that
// its token crossed the network in the clear.
func TestRefuseLatePlaintextFromRemote(t *testing.T) {
	f := newFixture(t)
	s := newSession(false)
	s.RefuseLate()
	out, act := run(t, f, s, cmd("AUTH", f.live(t, 0)))
	if out != "-"+msgTLSRequired+"\r\n" || act != netio.Close {
		t.Fatalf("%q %v", out, act)
	}
}
