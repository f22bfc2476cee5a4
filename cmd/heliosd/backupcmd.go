package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/heliosdb/auth/issuer"
)

// runBackup is `heliosd backup --to FILE`: it asks the running issuer for
// a backup (GET /v1/cluster/backup, authenticated with the cluster key, so
// it works from another host over TLS too), writes it to FILE.partial
// (mode 0600), checks its checksum, syncs it and renames it to FILE.
func runBackup(args []string, out io.Writer) error {
	fs := commandFlags("heliosd backup", "usage: heliosd backup --to FILE [--issuer-url URL] [--cluster-key-file F] [--issuer-ca PEM]", out)
	to := fs.String("to", "", "the backup `file` to write (mode 0600)")
	admin := clusterAdminFlags(fs, "the issuer's")
	if err := fs.Parse(longDashes(fs, args)); err != nil {
		return suggestFlag(fs, err)
	}
	if *to == "" {
		return errors.New("backup: --to FILE is required")
	}
	resp, err := admin.do(context.Background(), http.MethodGet, "/v1/cluster/backup", "")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	partial := *to + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(partial) // gone after the rename
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("backup: receiving: %w", err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	size, err := verifyBackup(partial)
	if err != nil {
		return fmt.Errorf("backup: the issuer's stream did not verify (see its log): %w", err)
	}
	m, err := readManifest(partial)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(partial, *to); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	syncDir(filepath.Dir(*to))
	fmt.Fprintf(out, "backup %s: issuer sequence %d, %d files and the store, %d bytes, SHA-256 verified\n", *to, m.Seq, len(m.Files), size)
	return nil
}

// readManifest reads the manifest of the backup at path.
func readManifest(path string) (*backupManifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if _, err := br.Discard(len(backupMagic)); err != nil {
		return nil, err
	}
	return parseManifest(br)
}

func parseManifest(br *bufio.Reader) (*backupManifest, error) {
	raw, err := readBackupChunk(br, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", errCorrupt, err)
	}
	var m backupManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", errCorrupt, err)
	}
	if m.Version != backupVersion {
		return nil, fmt.Errorf("backup format version %d: this heliosd reads version %d", m.Version, backupVersion)
	}
	return &m, nil
}

// readBackupChunk reads a uvarint-length-prefixed chunk of at most limit bytes.
func readBackupChunk(br *bufio.Reader, limit uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("a %d-byte record", n)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(br, b)
	return b, err
}

// runRestore is `heliosd restore --from FILE --data-dir D`: it verifies the
// backup's checksum, then fills D — which must be empty or absent — with
// the backup's files and issuer store (the data directory locked meanwhile,
// so no daemon starts on it half-restored). The restored issuer's sequence
// continues issuer.BackupGap past the backup's, so no number the old issuer
// handed out after the backup is used again and every gateway node
// following it resyncs from a full snapshot. On any failure D is emptied
// again.
func runRestore(args []string, out io.Writer) error {
	fs := commandFlags("heliosd restore", "usage: heliosd restore --from FILE --data-dir DIR", out)
	from := fs.String("from", "", "the backup `file` (heliosd backup --to)")
	dir := fs.String("data-dir", "", "the new data `directory` (empty or absent)")
	if err := fs.Parse(longDashes(fs, args)); err != nil {
		return suggestFlag(fs, err)
	}
	if *from == "" || *dir == "" {
		return errors.New("restore: --from FILE and --data-dir DIR are required")
	}
	if entries, err := os.ReadDir(*dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("restore: %s is not empty: restore into a new directory, then point heliosd at it", *dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := verifyBackup(*from); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	m, err := restoreInto(*from, *dir)
	if err != nil {
		entries, _ := os.ReadDir(*dir)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(*dir, e.Name()))
		}
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(out, "restored %s into %s: backup of %s at issuer sequence %d; the restored issuer continues after %d\n",
		*from, *dir, m.Created.Format("2006-01-02T15:04:05Z"), m.Seq, m.Seq+issuer.BackupGap)
	return nil
}

// restoreInto writes the verified backup at path into the empty dir.
func restoreInto(path, dir string) (*backupManifest, error) {
	lock, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	if lock != nil {
		defer func() {
			lock.Close()
			os.Remove(lock.Name())
		}()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	if _, err := br.Discard(len(backupMagic)); err != nil {
		return nil, err
	}
	m, err := parseManifest(br)
	if err != nil {
		return nil, err
	}
	for _, bf := range m.Files {
		b, err := readBackupChunk(br, maxBackupFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errCorrupt, bf.Name, err)
		}
		if bf.Name != filepath.Base(bf.Name) || strings.HasPrefix(bf.Name, ".") || len(b) != bf.Size {
			return nil, fmt.Errorf("%w: file entry %q", errCorrupt, bf.Name)
		}
		if err := os.WriteFile(filepath.Join(dir, bf.Name), b, 0o600); err != nil {
			return nil, err
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := issuer.OpenWith(filepath.Join(dir, "issuer"), issuer.StoreOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := store.RestoreBackup(br, m.Seq+issuer.BackupGap); err != nil {
		store.Close()
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if err := store.Close(); err != nil {
		return nil, err
	}
	// What follows the store must be exactly the trailer.
	if rest, _ := io.Copy(io.Discard, br); rest != int64(trailerLen) {
		return nil, fmt.Errorf("%w: %d bytes after the store, want the %d-byte trailer", errCorrupt, rest, trailerLen)
	}
	syncDir(dir)
	return m, nil
}

// syncDir fsyncs a directory so a rename or new file in it is durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
