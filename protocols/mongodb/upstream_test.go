package mongodb

import (
	"strings"
	"testing"
)

// TestUpstreamURL: the upstream's connection string — its address (the
// default port when none), authSource and mechanism — and refusals that
// never repeat the password.
func TestUpstreamURL(t *testing.T) {
	for _, tc := range []struct {
		url, addr, authSource, mech, user string
	}{
		{"mongodb://127.0.0.1:27018/", "127.0.0.1:27018", "admin", "", ""},
		{"mongodb://db.internal", "db.internal:27017", "admin", "", ""},
		{"mongodb://app:pw@127.0.0.1:27018/appdb", "127.0.0.1:27018", "appdb", "", "app"},
		{"mongodb://app:pw@127.0.0.1:27018/appdb?authSource=admin&authMechanism=SCRAM-SHA-1", "127.0.0.1:27018", "admin", "SCRAM-SHA-1", "app"},
		{"mongodb://app:pw@[::1]:27018/?authMechanism=PLAIN", "[::1]:27018", "admin", "PLAIN", "app"},
	} {
		u, err := NewUpstream(UpstreamOptions{URL: tc.url})
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if u.Address() != tc.addr || u.authSource != tc.authSource || u.mechanism != tc.mech || u.user != tc.user {
			t.Errorf("%s: address %s, authSource %s, mechanism %q, user %q", tc.url, u.Address(), u.authSource, u.mechanism, u.user)
		}
		if u.user != "" && (u.scram256 == nil || u.scram1 == nil) {
			t.Errorf("%s: no SCRAM clients", tc.url)
		}
		u.Close()
	}
	for _, tc := range []struct{ url, want string }{
		{"mongodb+srv://app:secretpw@cluster.example/", "mongodb+srv"},
		{"mongodb://app:secretpw@127.0.0.1:27018/?authMechanism=GSSAPI", "GSSAPI"},
		{"mongodb://app:secretpw@127.0.0.1:notaport/", ""},
		{"postgres://app:secretpw@127.0.0.1/", ""},
	} {
		_, err := NewUpstream(UpstreamOptions{URL: tc.url})
		if err == nil {
			t.Errorf("%s was accepted", tc.url)
			continue
		}
		if strings.Contains(err.Error(), "secretpw") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.url, err)
		}
	}
}
