package main

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer/feed"
)

func TestNodePolicySnapshotReplacesRegistry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node-policy.json")
	p := newNodePolicy(path, nil)
	tok := core.NewTokenID()
	for _, e := range []feed.Event{
		{Kind: feed.KindDatabase, Database: "main"},
		{Kind: feed.KindDatabase, Database: "old", Test: true},
		{Kind: feed.KindSnapshotBegin},
		{Kind: feed.KindDatabase, Database: "main"},
		{Kind: feed.KindDatabase, Database: "scratch", Test: true},
		{Kind: feed.KindIPPolicy, Token: tok, Expires: time.Now().Unix() + 60, IPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{Kind: feed.KindSnapshotEnd},
	} {
		p.apply(&e)
	}
	if ok, _ := p.set.Database("old"); ok {
		t.Fatal("a database missing from the snapshot survived it")
	}
	if !p.set.IsTestDatabase([]byte("scratch")) || p.set.IsTestDatabase([]byte("main")) {
		t.Fatal("registry not applied")
	}
	if !p.set.AllowedFrom(tok, netip.MustParseAddr("10.1.1.1")) || p.set.AllowedFrom(tok, netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("allowlist not applied")
	}
	// A restarted node loads what was saved.
	p.save()
	q := newNodePolicy(path, nil)
	if !q.set.IsTestDatabase([]byte("scratch")) || !q.set.AllowedFrom(tok, netip.MustParseAddr("10.1.1.1")) {
		t.Fatal("policy file not loaded")
	}
	p.apply(&feed.Event{Kind: feed.KindDatabase, Database: "scratch", Deleted: true})
	if ok, _ := p.set.Database("scratch"); ok {
		t.Fatal("deleted database still registered")
	}
}

func TestRevocationHubPublishesRevocationsOnly(t *testing.T) {
	var h revocationHub
	var got []feed.Kind
	h.Subscribe(func(e *feed.Event) { got = append(got, e.Kind) })
	for _, k := range []feed.Kind{feed.KindToken, feed.KindHeartbeat, feed.KindAccount, feed.KindDatabase, feed.KindKey, feed.KindIPPolicy, feed.KindSnapshotEnd} {
		h.publish(&feed.Event{Kind: k})
	}
	if len(got) != 4 || got[0] != feed.KindToken || got[1] != feed.KindAccount || got[2] != feed.KindKey || got[3] != feed.KindSnapshotEnd {
		t.Fatalf("published %v", got)
	}
}
