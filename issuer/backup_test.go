package issuer

import (
	"bytes"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
)

// TestBackupStateAndRestore: a state taken with TakeState does not hold up
// writes while it is open (200 token creations and revocations complete),
// holds exactly what was committed when it was taken, and RestoreBackup
// puts that into a fresh store whose log continues at the floor (sequence
// and compacted watermark), applied index 0; a truncated stream is an
// error.
func TestBackupStateAndRestore(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	acc := signup(t, s, "b@example.com")
	before, after := newRecord(acc.ID), newRecord(acc.ID)
	for _, r := range []*TokenRecord{before, after} {
		if _, err := s.Submit(&Command{Op: OpCreateToken, Token: r}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Submit(&Command{Op: OpRevokeToken, At: time.Now().Unix(), Account: acc.ID, TokenID: before.ID}); err != nil {
		t.Fatal(err)
	}
	st, err := s.TakeState()
	if err != nil {
		t.Fatal(err)
	}
	seq, err := st.Seq()
	if err != nil || seq != s.LastSeq() {
		t.Fatalf("state seq %d (%v), store at %d", seq, err, s.LastSeq())
	}
	// Writes go on while the state is open.
	start := time.Now()
	for i := 0; i < 100; i++ {
		r := newRecord(acc.ID)
		if _, err := s.Submit(&Command{Op: OpCreateToken, Token: r}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Submit(&Command{Op: OpRevokeToken, At: time.Now().Unix(), Account: acc.ID, TokenID: r.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Submit(&Command{Op: OpRevokeToken, At: time.Now().Unix(), Account: acc.ID, TokenID: after.ID}); err != nil {
		t.Fatal(err)
	}
	t.Logf("201 writes with the state open: %s", time.Since(start))
	var buf bytes.Buffer
	if _, err := st.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	st.Release()
	if s.LastSeq() != seq+201 {
		t.Fatalf("store at %d after 201 writes from %d", s.LastSeq(), seq)
	}

	r := openStore(t, t.TempDir())
	defer r.Close()
	if err := r.RestoreBackup(bytes.NewReader(buf.Bytes()[:buf.Len()*2/3]), seq+BackupGap); err == nil {
		t.Fatal("a truncated state restored without an error")
	}
	r2 := openStore(t, t.TempDir())
	defer r2.Close()
	floor := seq + BackupGap
	if err := r2.RestoreBackup(bytes.NewReader(buf.Bytes()), floor); err != nil {
		t.Fatal(err)
	}
	if got := r2.Revocations().Check(before.ID, acc.ID, before.Created, 1); got != core.RevokedToken {
		t.Errorf("token revoked before the state: %v after restore", got)
	}
	if got := r2.Revocations().Check(after.ID, acc.ID, after.Created, 1); got != core.NotRevoked {
		t.Errorf("token revoked after the state: %v after restore, want not revoked", got)
	}
	if r2.LastSeq() != floor || r2.Compacted() != floor || r2.AppliedIndex() != 0 {
		t.Fatalf("restored: seq %d compacted %d applied %d, want %d %d 0", r2.LastSeq(), r2.Compacted(), r2.AppliedIndex(), floor, floor)
	}
	if _, err := r2.Submit(&Command{Op: OpSignup, At: time.Now().Unix(), Email: "b@example.com", Hash: "h"}); err == nil {
		t.Fatal("the restored store lost the account")
	}
	res, err := r2.Submit(&Command{Op: OpRevokeToken, At: time.Now().Unix(), Account: acc.ID, TokenID: after.ID})
	if err != nil || res.Seq != floor+1 {
		t.Fatalf("first write after restore: seq %d (%v), want %d", res.Seq, err, floor+1)
	}
}
