package postgres

import (
	"testing"

	"github.com/heliosdb/auth/netio"
)

// TestRefuseLateAfterSSLRequest: a refused connection answers the
// SSLRequest as usual ('S' and TLS, or 'N') and the StartupMessage, in TLS
// or not, with FATAL 53300, without asking for a password.
func TestRefuseLateAfterSSLRequest(t *testing.T) {
	ssl := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	for _, tc := range []struct {
		name string
		info netio.ConnInfo
		want byte
		act  netio.Action
	}{
		{"tls", netio.ConnInfo{TLSAvailable: true, PlaintextOK: true}, 'S', netio.UpgradeTLS},
		{"no certificate", netio.ConnInfo{PlaintextOK: true}, 'N', netio.Continue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.info)
			r.sess.RefuseLate()
			out, act := r.feed(ssl)
			if string(out) != string(tc.want) || act != tc.act {
				t.Fatalf("SSLRequest: %q %v", out, act)
			}
			if act == netio.UpgradeTLS {
				r.info.TLS = true
			}
			out, act = r.feed(startup("user", "default", "database", "main"))
			ms := parseBackend(t, out)
			if act != netio.Close || len(ms) != 1 || ms[0].typ != 'E' {
				t.Fatalf("startup: %q %v", out, act)
			}
			if c, m, s := errField(ms[0].body, 'C'), errField(ms[0].body, 'M'), errField(ms[0].body, 'S'); c != "53300" || m != "sorry, too many clients already" || s != "FATAL" {
				t.Fatalf("error %s %s %q", s, c, m)
			}
			if r.sess.Authenticated() || len(r.obs.outcomes) != 0 {
				t.Fatalf("refused session authenticated=%v outcomes=%v", r.sess.Authenticated(), r.obs.outcomes)
			}
		})
	}
}

// TestRefuseLateBeforeTLSCheck: the refusal comes before the plaintext
// check, as PostgreSQL reports too many clients before authentication.
func TestRefuseLateBeforeTLSCheck(t *testing.T) {
	r := newRig(t, netio.ConnInfo{TLSAvailable: true})
	r.sess.RefuseLate()
	out, act := r.feed(startup("user", "default"))
	ms := parseBackend(t, out)
	if act != netio.Close || len(ms) != 1 || errField(ms[0].body, 'C') != "53300" {
		t.Fatalf("%q %v", out, act)
	}
}
