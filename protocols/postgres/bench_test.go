package postgres

import (
	"testing"

	"github.com/heliosdb/auth/netio"
)

// BenchmarkLogin is the server side of one handshake: StartupMessage,
// password (token verification), AuthenticationOk and the parameter set.
func BenchmarkLogin(b *testing.B) {
	r := newRig(&testing.T{}, netio.ConnInfo{PlaintextOK: true})
	in := append(startup("user", "default", "database", "main"), frontend('p', cstr(r.token))...)
	proto := New(Options{})
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		s := proto.NewSession(r.info)
		_, out, _ = s.Handle(r.env, in, out[:0])
	}
}

// BenchmarkSimpleQuery is one SELECT 1 on an authenticated session.
func BenchmarkSimpleQuery(b *testing.B) {
	r := newRig(&testing.T{}, netio.ConnInfo{PlaintextOK: true})
	r.sess.Handle(r.env, append(startup("user", "default"), frontend('p', cstr(r.token))...), nil)
	in := frontend('Q', cstr("SELECT 1"))
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		_, out, _ = r.sess.Handle(r.env, in, out[:0])
	}
}

// BenchmarkExtendedQuery is pgx's cached-statement round: Bind, Execute,
// Sync on a prepared SELECT 1, binary result.
func BenchmarkExtendedQuery(b *testing.B) {
	r := newRig(&testing.T{}, netio.ConnInfo{PlaintextOK: true})
	r.sess.Handle(r.env, append(startup("user", "default"), frontend('p', cstr(r.token))...), nil)
	r.sess.Handle(r.env, frontend('P', cstr("s1"), cstr("SELECT 1"), []byte{0, 0}), nil)
	in := frontend('B', cstr(""), cstr("s1"), []byte{0, 0, 0, 0, 0, 1, 0, 1})
	in = append(in, frontend('E', cstr(""), []byte{0, 0, 0, 0})...)
	in = append(in, frontend('S')...)
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		_, out, _ = r.sess.Handle(r.env, in, out[:0])
	}
}

// TestQueryAllocs proves the authenticated simple and extended query paths
// allocate nothing (what the benchmarks above report).
func TestQueryAllocs(t *testing.T) {
	r := newRig(t, netio.ConnInfo{PlaintextOK: true})
	r.login()
	r.sess.Handle(r.env, frontend('P', cstr("s1"), cstr("SELECT 1"), []byte{0, 0}), nil)
	simple := frontend('Q', cstr("SELECT 1"))
	ext := frontend('B', cstr(""), cstr("s1"), []byte{0, 0, 0, 0, 0, 1, 0, 1})
	ext = append(ext, frontend('E', cstr(""), []byte{0, 0, 0, 0})...)
	ext = append(ext, frontend('S')...)
	out := make([]byte, 0, 4096)
	for name, in := range map[string][]byte{"simple": simple, "extended": ext} {
		if a := testing.AllocsPerRun(200, func() { _, out, _ = r.sess.Handle(r.env, in, out[:0]) }); a != 0 {
			t.Errorf("%s query: %.1f allocs", name, a)
		}
		if ms := parseBackend(t, out); ms[len(ms)-1].typ != 'Z' {
			t.Fatalf("%s query: %q", name, out)
		}
	}
}
