package netio

import (
	"bufio"
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/netio/proxyproto/proxyprototest"
)

func addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) }

// fill acquires from a until refused (at most limit times) and returns how
// many it got.
func fill(l *connLimiter, a netip.Addr, limit int) int {
	n := 0
	for n < limit && l.acquire(a) {
		n++
	}
	return n
}

// limiterEmpty fails unless l holds nothing: no slot, no refusal, no map
// entry.
func limiterEmpty(t *testing.T, l *connLimiter) {
	t.Helper()
	if l.open() != 0 || l.refusals() != 0 {
		t.Fatalf("held %d, refusing %d after every release", l.open(), l.refusals())
	}
	for i := range l.shards {
		if n := len(l.shards[i].m); n != 0 {
			t.Fatalf("shard %d keeps %d addresses: %v", i, n, l.shards[i].m)
		}
	}
}

// TestLimiterFairness: eleven addresses, each under the per-address limit,
// fill the unreserved 90% of the cap and, of the reserve, only their first
// lightConns connections each (those of the addresses that started late);
// addresses holding few connections still get in, up to lightConns each,
// until the cap itself, which still holds.
func TestLimiterFairness(t *testing.T) {
	l := newConnLimiter(1000, 100)
	held := map[netip.Addr]int{}
	for i := 2; i <= 12; i++ {
		held[addr(i)] = fill(l, addr(i), 1000)
	}
	if l.open() != 900+2*lightConns || held[addr(11)] != lightConns || held[addr(12)] != lightConns {
		t.Fatalf("the flood holds %d of 1000, want 900 and %d light (%v)", l.open(), lightConns, held)
	}
	for i := 2; i <= 12; i++ {
		if l.acquire(addr(i)) {
			t.Fatalf("flood address %v got a reserved slot", addr(i))
		}
	}
	// New clients get in, up to lightConns connections each, until the
	// cap.
	for i := 100; l.open() < 1000; i++ {
		n := fill(l, addr(i), 1000)
		if want := min(lightConns, 1000-int(l.open())+n); n != want {
			t.Fatalf("new address %v got %d connections, want %d", addr(i), n, want)
		}
		held[addr(i)] = n
	}
	if l.acquire(addr(999)) {
		t.Fatalf("the cap does not hold: %d open", l.open())
	}
	// A flood address that gave back slots may not take them again while
	// the gateway is past the unreserved part: they go to light addresses.
	for range 2 {
		l.releaseIP(addr(2))
		l.releaseTotal()
	}
	held[addr(2)] -= 2
	if l.acquire(addr(2)) {
		t.Fatal("a heavy address took a slot above the unreserved part")
	}
	if !l.acquire(addr(998)) || !l.acquire(addr(998)) || l.acquire(addr(997)) {
		t.Fatal("the freed slots must go to light addresses")
	}
	held[addr(998)] = 2
	for a, n := range held {
		for range n {
			l.releaseIP(a)
			l.releaseTotal()
		}
	}
	limiterEmpty(t, l)
}

// TestLimiterSmallCaps: the reserve is a share of the cap (none below 10
// connections) and the per-address limit holds as before.
func TestLimiterSmallCaps(t *testing.T) {
	l := newConnLimiter(3, 2)
	if fill(l, addr(1), 10) != 2 || fill(l, addr(2), 10) != 1 || l.acquire(addr(3)) {
		t.Fatalf("cap 3, 2 per address: %d open", l.open())
	}
	// Cap 50: heavy addresses stop at 45; the third one's light
	// connections go past it, and a new address gets the last 2.
	l = newConnLimiter(50, 20)
	if a, b, c := fill(l, addr(1), 50), fill(l, addr(2), 50), fill(l, addr(3), 50); a != 20 || b != 20 || c != lightConns {
		t.Fatalf("cap 50: %d %d %d", a, b, c)
	}
	if fill(l, addr(4), 50) != 2 || l.open() != 50 {
		t.Fatalf("cap 50: %d open", l.open())
	}
}

// TestLimiterProxyHeld: a balancer's connection takes a global slot before
// its header; the client's limits then apply with that slot counted.
func TestLimiterProxyHeld(t *testing.T) {
	l := newConnLimiter(100, 50)
	heavy := fill(l, addr(1), 100) + fill(l, addr(2), 100)
	if heavy != 90 {
		t.Fatalf("heavy addresses got %d", heavy)
	}
	if !l.acquireTotal() {
		t.Fatal("a balancer's connection is refused below the cap")
	}
	if l.acquireIPHeld(addr(1)) {
		t.Fatal("a heavy client behind a balancer took a reserved slot")
	}
	if !l.acquireIPHeld(addr(3)) {
		t.Fatal("a light client behind a balancer was refused")
	}
	l.releaseIP(addr(3))
	l.releaseTotal()
	for a, n := range map[netip.Addr]int{addr(1): 50, addr(2): 40} {
		for range n {
			l.releaseIP(a)
			l.releaseTotal()
		}
	}
	limiterEmpty(t, l)
}

// TestLimiterRefusals: late refusals are bounded per address and
// globally, and an unknown address (before a PROXY header) counts only
// globally.
func TestLimiterRefusals(t *testing.T) {
	l := newConnLimiter(320, 1000) // a budget of max(16, 320/16) = 20
	for range maxRefusingPerIP {
		if !l.acquireRefusal(addr(1)) {
			t.Fatal("refusal slot refused under the per-address bound")
		}
	}
	if l.acquireRefusal(addr(1)) {
		t.Fatal("more than maxRefusingPerIP refusals from one address")
	}
	for range 20 - maxRefusingPerIP - 1 {
		if !l.acquireRefusal(netip.Addr{}) {
			t.Fatal("refusal slot refused under the budget")
		}
	}
	if !l.acquireRefusal(addr(2)) || l.acquireRefusal(addr(3)) || l.acquireRefusal(netip.Addr{}) {
		t.Fatal("the global refusal budget does not hold")
	}
	if l.open() != 0 {
		t.Fatal("a refusal holds a connection slot")
	}
	for range maxRefusingPerIP {
		l.releaseRefusal(addr(1))
	}
	for range 20 - maxRefusingPerIP - 1 {
		l.releaseRefusal(netip.Addr{})
	}
	l.releaseRefusal(addr(2))
	limiterEmpty(t, l)
}

// TestLimiterConcurrent: acquires and releases from many goroutines never
// take the total past the cap or a heavy address past the unreserved
// part, and leave nothing behind.
func TestLimiterConcurrent(t *testing.T) {
	l := newConnLimiter(200, 40)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var over []string
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var mine []netip.Addr
			var refusals []netip.Addr
			for range 20000 {
				a := addr(rng.IntN(12))
				switch op := rng.IntN(10); {
				case op < 5:
					if l.acquire(a) {
						if n := l.open(); n > 200 {
							mu.Lock()
							over = append(over, "total "+strconv.FormatInt(n, 10))
							mu.Unlock()
						}
						mine = append(mine, a)
					}
				case op < 6:
					if l.acquireTotal() {
						if l.acquireIPHeld(a) {
							mine = append(mine, a)
						} else {
							l.releaseTotal()
						}
					}
				case op < 7:
					if l.acquireRefusal(a) {
						refusals = append(refusals, a)
					}
				case op < 8 && len(refusals) > 0:
					l.releaseRefusal(refusals[len(refusals)-1])
					refusals = refusals[:len(refusals)-1]
				case len(mine) > 0:
					i := rng.IntN(len(mine))
					l.releaseIP(mine[i])
					l.releaseTotal()
					mine[i] = mine[len(mine)-1]
					mine = mine[:len(mine)-1]
				}
			}
			for _, a := range mine {
				l.releaseIP(a)
				l.releaseTotal()
			}
			for _, a := range refusals {
				l.releaseRefusal(a)
			}
		}()
	}
	wg.Wait()
	if len(over) > 0 {
		t.Fatalf("over the cap: %v", over[:min(5, len(over))])
	}
	limiterEmpty(t, l)
}

// lateProto is lineProto whose sessions are LateRefusers: a refused
// connection answers STARTTLS as usual and its first other line with
// "ERR limit connections", then closes.
type lateProto struct{ lineProto }

func (lateProto) NewSession(info *ConnInfo) Session {
	return &lateSession{lineSession: lineSession{info: info}}
}

type lateSession struct {
	lineSession
	refusing bool
}

func (s *lateSession) RefuseLate() { s.refusing = true }

func (s *lateSession) Handle(env *Env, in, out []byte) (int, []byte, Action) {
	if !s.refusing || len(in) >= 9 && string(in[:9]) == "STARTTLS\n" {
		return s.lineSession.Handle(env, in, out)
	}
	for i, c := range in {
		if c == '\n' {
			return i + 1, s.LimitError(LimitConnections, out), Close
		}
	}
	return 0, out, Continue
}

// startLate starts a gateway serving lateProto, as startLine does
// lineProto (on another listener of the same fixture's keyring).
func startLate(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := startLine(t, Config{}, lineProto{}) // a keyring, TLS and a token
	cfg.Keyring, cfg.Revocations, cfg.TLS, cfg.Loops = f.ring, f.revs, f.tls, 2
	gw, err := Serve(cfg, []Listener{{Addr: "127.0.0.1:0", Protocol: lateProto{}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop(context.Background()) })
	f.gw, f.addr = gw, gw.Addr("line").String()
	return f
}

// holdAuthed opens n authenticated connections from addr's default
// source and keeps them open.
func holdAuthed(t *testing.T, f *fixture, n int) {
	t.Helper()
	for range n {
		c, r := dialLine(t, f.addr)
		c.Write([]byte("AUTH " + f.token + "\n"))
		expect(t, r, "OK")
	}
}

// TestEngineLateRefusal: over the cap, a LateRefuser's connection is
// answered in reply to its first request, in plaintext or after STARTTLS
// inside TLS; a silent one is closed with the refusal at its short
// deadline; beyond maxRefusingPerIP the refusal is immediate; and every
// refusal slot comes back.
func TestEngineLateRefusal(t *testing.T) {
	f := startLate(t, Config{MaxConns: 2, HandshakeTimeout: 600 * time.Millisecond})
	holdAuthed(t, f, 2)

	c, r := dialLine(t, f.addr)
	c.Write([]byte("WHO\n"))
	expect(t, r, "ERR limit connections")
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("a refused connection stayed open after its answer")
	}

	c, r = dialLine(t, f.addr)
	c.Write([]byte("STARTTLS\n"))
	expect(t, r, "OK tls")
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	tc.Write([]byte("WHO\n"))
	tr := bufio.NewReader(tc)
	expect(t, tr, "ERR limit connections")

	// Silent ones: each holds a refusal slot until its deadline.
	start := time.Now()
	var silent []*bufio.Reader
	for range maxRefusingPerIP {
		_, r := dialLine(t, f.addr)
		silent = append(silent, r)
	}
	waitRefusing(t, f.gw, maxRefusingPerIP)
	_, r = dialLine(t, f.addr) // over the per-address bound: answered at once
	expect(t, r, "ERR limit connections")
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("the immediate refusal took %v", d)
	}
	for _, r := range silent {
		expect(t, r, "ERR limit connections")
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 3*time.Second {
		t.Fatalf("silent refused connections closed after %v, want the 600ms deadline", d)
	}
	waitRefusing(t, f.gw, 0)
	waitOpen(t, f.gw, 2)
}

// TestEngineLateRefusalBehindBalancer: behind a trusted balancer, a client
// over its per-address limit, and a connection refused before its header,
// are refused late too, after the header.
func TestEngineLateRefusalBehindBalancer(t *testing.T) {
	lb, _ := ParsePrefixes([]string{"127.0.0.0/8"})
	f := startLate(t, Config{ProxyFrom: lb, MaxConns: 2, MaxConnsPerIP: 1})
	dst := netip.MustParseAddrPort("10.0.0.1:5432")
	hdr := func(src string) []byte { return proxyprototest.Append(nil, netip.MustParseAddrPort(src), dst) }

	a, ra := dialLine(t, f.addr)
	a.Write(append(hdr("203.0.113.9:4000"), "AUTH "+f.token+"\n"...))
	expect(t, ra, "OK")

	b, rb := dialLine(t, f.addr) // the same client: over its limit
	b.Write(hdr("203.0.113.9:4001"))
	time.Sleep(50 * time.Millisecond)
	b.Write([]byte("ADDR\n"))
	expect(t, rb, "ERR limit connections")

	c, rc := dialLine(t, f.addr)
	c.Write(append(hdr("203.0.113.10:4000"), "AUTH "+f.token+"\n"...))
	expect(t, rc, "OK")

	d, rd := dialLine(t, f.addr) // the cap is full before the header
	d.Write(append(hdr("203.0.113.11:4000"), "ADDR\n"...))
	expect(t, rd, "ERR limit connections")
	waitRefusing(t, f.gw, 0)
	waitOpen(t, f.gw, 2)
}

func waitRefusing(t *testing.T, gw *Gateway, n int64) {
	t.Helper()
	for i := 0; i < 500 && gw.limiter.refusals() != n; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := gw.limiter.refusals(); got != n {
		t.Fatalf("refusing %d, want %d", got, n)
	}
}

// TestLimiterIPv6CountsSlash64 shows that the addresses of one IPv6 /64
// share one per-address limit and one standing for the reserved share:
// a host that rotates through its /64 gets no more than one address would.
func TestLimiterIPv6CountsSlash64(t *testing.T) {
	l := newConnLimiter(1000, 20)
	v6 := func(net, host uint16) netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(net >> 8), byte(net), 8: byte(host >> 8), 15: byte(host)})
	}
	var taken []netip.Addr
	for h := uint16(1); h <= 100; h++ {
		if l.acquire(v6(1, h)) {
			taken = append(taken, v6(1, h))
		}
	}
	if len(taken) != 20 {
		t.Fatalf("100 addresses of one /64 got %d connections, want the per-address limit 20", len(taken))
	}
	// Another /64 is another client; an IPv4-mapped address is its IPv4.
	if !l.acquire(v6(2, 1)) {
		t.Fatal("another /64 was refused")
	}
	mapped := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 7})
	if got := fill(l, mapped, 30) + fill(l, netip.AddrFrom4([4]byte{10, 0, 0, 7}), 30); got != 20 {
		t.Fatalf("an IPv4 address and its mapped form got %d connections together, want 20", got)
	}
	for _, a := range taken {
		l.releaseIP(a)
		l.releaseTotal()
	}
	l.releaseIP(v6(2, 1))
	l.releaseTotal()
	for range 20 {
		l.releaseIP(mapped)
		l.releaseTotal()
	}
	limiterEmpty(t, l)
}

// refusals returns the number of connections in a late refusal.
func (l *connLimiter) refusals() int64 { return l.refusing.Load() }
