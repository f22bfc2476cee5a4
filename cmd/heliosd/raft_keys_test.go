package main

import (
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
)

// TestRootKeyDigest: the replicas' TLS identity stays the same through a
// rotation and a retirement (a replica whose keyring file lags can still
// join and catch up), and differs for another keyring.
func TestRootKeyDigest(t *testing.T) {
	ring := core.GenerateKeyring(time.Now())
	data, _ := keyfile.Marshal(ring)
	lagging, _ := keyfile.Parse(data)
	before := rootKeyDigest(ring)
	if _, err := ring.Rotate(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ring.Retire(1); err != nil {
		t.Fatal(err)
	}
	if got := rootKeyDigest(ring); got != before || got != rootKeyDigest(lagging) {
		t.Fatal("the identity changed with a rotation and retirement")
	}
	if rootKeyDigest(core.GenerateKeyring(time.Now())) == before {
		t.Fatal("another keyring has the same identity")
	}
}
