package proxyproto

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/heliosdb/auth/netio/proxyproto/proxyprototest"
)

func TestRoundTrip(t *testing.T) {
	for _, pair := range [][2]string{{"203.0.113.50:41000", "10.0.0.1:5432"}, {"[2001:db8::1]:5000", "[2001:db8::2]:6379"}} {
		src, dst := netip.MustParseAddrPort(pair[0]), netip.MustParseAddrPort(pair[1])
		b := proxyprototest.Append(nil, src, dst)
		b = append(b, "payload"...)
		h, n, err := Parse(b)
		if err != nil || h.Local || h.Source != src || h.Destination != dst || string(b[n:]) != "payload" {
			t.Fatalf("%v: %+v %d %v", pair, h, n, err)
		}
		for i := 0; i < n; i++ {
			if _, _, err := Parse(b[:i]); !errors.Is(err, ErrNeedMore) {
				t.Fatalf("prefix %d: %v", i, err)
			}
		}
	}
}

func TestRejects(t *testing.T) {
	good := proxyprototest.Append(nil, netip.MustParseAddrPort("1.2.3.4:1"), netip.MustParseAddrPort("5.6.7.8:2"))
	cases := map[string][]byte{
		"not proxy":   []byte("GET / HTTP/1.1\r\n"),
		"pg startup":  {0, 0, 0, 8, 4, 210, 22, 47},
		"version 1":   append(append([]byte(Signature), 0x11), good[13:]...),
		"bad command": append(append([]byte(Signature), 0x22), good[13:]...),
		"bad family":  append(append([]byte(Signature), 0x21, 0x51), good[14:]...),
		"short body":  append([]byte(Signature), 0x21, 0x11, 0, 4, 1, 2, 3, 4),
		"huge length": append([]byte(Signature), 0x21, 0x11, 0xFF, 0xFF),
	}
	for name, b := range cases {
		if _, _, err := Parse(b); err == nil || errors.Is(err, ErrNeedMore) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	local := append([]byte(Signature), 0x20, 0x00, 0, 0)
	if h, n, err := Parse(local); err != nil || !h.Local || n != 16 {
		t.Fatalf("LOCAL: %+v %d %v", h, n, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(proxyprototest.Append(nil, netip.MustParseAddrPort("1.2.3.4:1"), netip.MustParseAddrPort("5.6.7.8:2")))
	f.Add([]byte(Signature))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err == nil && (n < headerLen || n > len(b) || (!h.Local && !h.Source.IsValid())) {
			t.Fatalf("accepted %x as %+v len %d", b, h, n)
		}
	})
}
