package ops

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/testdaemon"
)

const backupPassword = "correct-horse-battery-staple"

// tokenOp is one token a client created, and what became of it.
type tokenOp struct {
	tok, id, email string
	created        time.Time // acknowledged
	revokeStart    time.Time // zero: never revoked
	revokeAck      time.Time
	revokeErr      error
}

// TestBackupRestore: 16 clients create and revoke tokens while heliosd
// backup runs against the daemon; the backup is restored into a new
// directory and a daemon started on it: every account logs in, every token
// acknowledged before the backup started verifies or is revoked exactly as
// it was then, and the sequence continues past everything the old issuer
// handed out. A gateway node that followed the old issuer past the backup,
// and comes back (same process) after the restored issuer has written more than that,
// resyncs from a full snapshot and so refuses a token revoked on the
// restored issuer (with the sequence restarting at the backup's it would
// skip that revocation as already applied).
func TestBackupRestore(t *testing.T) {
	bin := testdaemon.Build(t, "heliosd")
	d := testdaemon.Start(t)
	base := "http://" + d.HTTP
	nodeKey := filepath.Join(t.TempDir(), "cluster.key")
	write(t, nodeKey, read(t, filepath.Join(d.DataDir, "cluster.key")))
	node := testdaemon.Start(t, testdaemon.WithArgs("--role", "gateway", "--issuer-url", base, "--cluster-key-file", nodeKey))

	const clients = 16
	emails := make([]string, clients)
	bearers := make([]string, clients)
	for i := range emails {
		emails[i] = fmt.Sprintf("backup%d@example.com", i)
		d.Signup(t, emails[i], backupPassword)
		bearers[i] = d.Login(t, emails[i], backupPassword)
	}

	var (
		mu      sync.Mutex
		ops     []*tokenOp
		errs    []error
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		backupA time.Time    // backup started
		backupB time.Time    // backup done
		acked   atomic.Int32 // revocations acknowledged
	)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*tokenOp
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				tok, id, err := createToken(base, bearers[i], fmt.Sprintf("c%d-%d", i, n))
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				op := &tokenOp{tok: tok, id: id, email: emails[i], created: time.Now()}
				mine = append(mine, op)
				mu.Lock()
				ops = append(ops, op)
				mu.Unlock()
				if n%2 == 1 { // revoke an earlier one
					victim := mine[len(mine)/2]
					if victim.revokeStart.IsZero() {
						victim.revokeStart = time.Now()
						victim.revokeErr = revokeToken(base, bearers[i], victim.id)
						victim.revokeAck = time.Now()
						acked.Add(1)
					}
				}
			}
		}()
	}
	// Enough traffic before the backup, however slow the machine.
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("clients too slow: %s (errors: %v)", what, errs)
			}
		}
	}
	waitFor("20 revocations before the backup", func() bool { return acked.Load() >= 20 })
	file := filepath.Join(t.TempDir(), "heliosd.backup")
	mu.Lock()
	before := len(ops)
	mu.Unlock()
	backupA = time.Now()
	out, err := runHeliosd(t, bin, "backup", "--to", file, "--issuer-url", base, "--cluster-key-file", filepath.Join(d.DataDir, "cluster.key"))
	backupB = time.Now()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("heliosd backup: %v\n%s", err, out)
	}
	mu.Lock()
	during := len(ops) - before
	mu.Unlock()
	t.Logf("%s(backup took %s; %d tokens created meanwhile)", out, backupB.Sub(backupA).Round(time.Millisecond), during)
	// Writes the backup does not have: with 16 clients, at most 16
	// revocations were under way when it ended.
	afterB := acked.Load()
	waitFor("revocations after the backup", func() bool { return acked.Load() >= afterB+16+4 })
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("clients failed: %v", errs[0])
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", st, err)
	}
	// The clients revoke ever newer tokens; revoke some from before the
	// backup now too (their revocations are not in it).
	for i, n := 0, 0; i < len(ops) && n < 8; i++ {
		if op := ops[i]; op.created.Before(backupA) && op.revokeStart.IsZero() {
			op.revokeStart = time.Now()
			op.revokeErr = revokeToken(base, bearers[slices.Index(emails, op.email)], op.id)
			op.revokeAck = time.Now()
			n++
		}
	}

	// Classify what the backup must hold.
	var kept, revoked, lost []*tokenOp
	for _, op := range ops {
		if op.revokeErr != nil {
			t.Fatalf("revoke: %v", op.revokeErr)
		}
		switch {
		case !op.created.Before(backupA):
			// created during or after the backup: either way
		case !op.revokeStart.IsZero() && op.revokeAck.Before(backupA):
			revoked = append(revoked, op)
		case op.revokeStart.IsZero():
			kept = append(kept, op)
		case op.revokeStart.After(backupB):
			lost = append(lost, op) // revoked after the backup: not in it
		}
	}
	if len(kept) < 8 || len(revoked) < 16 || len(lost) < 8 {
		t.Fatalf("too little traffic: %d kept, %d revoked before the backup, %d revoked after", len(kept), len(revoked), len(lost))
	}
	oldSeq := feedSeq(t, base, d.DataDir)
	// The node has applied the old issuer's log past the backup.
	waitRefused(t, node.PG, lost[len(lost)-1].tok, "the node before the restore")
	// The node is cut off (stopped, not restarted: a restarted node asks
	// for a snapshot anyway) while the issuer is replaced.
	if err := syscall.Kill(node.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(node.PID(), syscall.SIGCONT)
	snapshotsBefore := strings.Count(node.Logs(), "revocation snapshot loaded")
	d.Stop()

	// Restore refuses a non-empty directory, a truncated and a corrupt file.
	restored := filepath.Join(t.TempDir(), "restored")
	if out, err := runHeliosd(t, bin, "restore", "--from", file, "--data-dir", d.DataDir); err == nil || !strings.Contains(out, "not empty") {
		t.Errorf("restore into a used directory: %v %s", err, out)
	}
	whole := read(t, file)
	// The corrupt copy flips every bit of one byte (replacing it with a
	// fixed byte changes nothing when the byte already was that one).
	flipped := []byte(whole)
	flipped[len(flipped)/2] ^= 0xff
	for name, bad := range map[string]string{"truncated": whole[:len(whole)*2/3], "corrupt": string(flipped)} {
		p := filepath.Join(t.TempDir(), name)
		write(t, p, bad)
		out, err := runHeliosd(t, bin, "restore", "--from", p, "--data-dir", restored)
		if err == nil || !strings.Contains(out, "corrupt or truncated") {
			t.Errorf("restore of a %s file: %v\n%s", name, err, out)
		}
		if _, err := os.Stat(restored); err == nil {
			if entries, _ := os.ReadDir(restored); len(entries) > 0 {
				t.Errorf("restore of a %s file left %d entries", name, len(entries))
			}
		}
	}
	out, err = runHeliosd(t, bin, "restore", "--from", file, "--data-dir", restored)
	if err != nil {
		t.Fatalf("heliosd restore: %v\n%s", err, out)
	}
	t.Log(out)

	// The restored issuer, on the old one's HTTP address (the node's --issuer-url).
	d2 := testdaemon.Start(t, testdaemon.WithDataDir(restored), testdaemon.WithArgs("--http-listen", d.HTTP))
	bearer := ""
	for _, email := range emails {
		tok, err := login(base, email, backupPassword)
		if err != nil {
			t.Fatalf("after restore: %v", err)
		}
		bearer = tok
	}
	for _, op := range kept {
		if err := pgAuth(d2.PG, op.tok); err != nil {
			t.Fatalf("token %s acknowledged before the backup is refused after restore: %v", op.id, err)
		}
	}
	for _, op := range revoked {
		if err := pgAuth(d2.PG, op.tok); err == nil || !strings.Contains(err.Error(), core.MsgRevoked) {
			t.Fatalf("token %s revoked before the backup: %v after restore", op.id, err)
		}
	}
	for _, op := range lost {
		if err := pgAuth(d2.PG, op.tok); err != nil {
			t.Errorf("token %s revoked after the backup is not valid in the restored state: %v", op.id, err)
		}
	}

	// A revocation on the restored issuer, then more writes than the old
	// issuer made after the backup, while the node is away.
	victim := kept[0]
	owner, err := login(base, victim.email, backupPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := revokeToken(base, owner, victim.id); err != nil {
		t.Fatal(err)
	}
	startSeq := feedSeq(t, base, restored)
	if startSeq <= oldSeq {
		t.Fatalf("restored issuer at sequence %d, not past the old issuer's %d", startSeq, oldSeq)
	}
	// As many writes as the old issuer made after the backup, and more: a
	// restored log restarting at the backup's sequence would now be past
	// the node's, which would ask only for what follows its own.
	var backupSeq uint64
	if _, err := fmt.Sscanf(out[strings.Index(out, "at issuer sequence "):], "at issuer sequence %d", &backupSeq); err != nil {
		t.Fatalf("restore output %q: %v", out, err)
	}
	writes := int(oldSeq-backupSeq) + 5
	for i := 0; i < writes; i++ {
		if _, _, err := createToken(base, bearer, fmt.Sprintf("after-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if seq := feedSeq(t, base, restored); seq < startSeq+uint64(writes) {
		t.Fatalf("sequence %d after %d writes from %d", seq, writes, startSeq)
	}
	if err := syscall.Kill(node.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, node.PG, victim.tok, "the node after the restore")
	if strings.Count(node.Logs(), "revocation snapshot loaded") <= snapshotsBefore {
		t.Errorf("the node did not load a full snapshot from the restored issuer:\n%s", node.Logs())
	}
}

// waitRefused waits until tok is refused as revoked by the PostgreSQL
// listener at addr.
func waitRefused(t *testing.T, addr, tok, who string) {
	t.Helper()
	var err error
	for i := 0; i < 150; i++ {
		if err = pgAuth(addr, tok); err != nil && strings.Contains(err.Error(), core.MsgRevoked) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: revoked token not refused: %v", who, err)
}
