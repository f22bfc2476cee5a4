package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core/tlsfile"
	"github.com/heliosdb/auth/issuer"
	"github.com/heliosdb/auth/issuer/feed"
)

// A backup of the issuer is one file:
//
//	"HELIOSDB-BACKUP1"                      16 bytes
//	manifest                                uvarint length + JSON (backupManifest)
//	each file of the manifest, in order     uvarint length + bytes
//	the issuer store                        issuer.State.WriteTo (a Pebble snapshot)
//	"HDBSUM01" + SHA-256                    of every byte before this trailer
//
// It is made by the running daemon (GET /v1/cluster/backup with the
// cluster key; `heliosd backup` calls it) from a Pebble snapshot, which
// does not hold up writers: logins, token creation and revocations go on
// while it is streamed. It holds the signing keyring and the cluster key:
// keep it as secret as the data directory.

const (
	backupMagic   = "HELIOSDB-BACKUP1"
	trailerMagic  = "HDBSUM01"
	trailerLen    = len(trailerMagic) + sha256.Size
	backupVersion = 1
	// maxBackupFile bounds one data-directory file in a backup.
	maxBackupFile = 16 << 20
)

// backupManifest describes a backup.
type backupManifest struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// Seq is the issuer's sequence number in the snapshot: the last write
	// the backup holds.
	Seq uint64 `json:"seq"`
	// Files are the data directory's files stored after the manifest.
	Files []backupFile `json:"files"`
}

// backupFile is one data-directory file of a backup.
type backupFile struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

// backupFiles are the data directory's files a backup carries besides the
// store (those present): the signing keyring, the cluster key gateway
// nodes hold a copy of, the self-signed certificate clients trust, and the
// passwords heliosd set on upstream servers.
func backupFiles(dataDir string) []string {
	names := []string{"keyring.json", feed.ClusterKeyFile, tlsfile.CertFile, tlsfile.KeyFile}
	ups, _ := filepath.Glob(filepath.Join(dataDir, "upstream-*.json"))
	for _, p := range ups {
		names = append(names, filepath.Base(p))
	}
	return slices.DeleteFunc(names, func(n string) bool {
		_, err := os.Stat(filepath.Join(dataDir, n))
		return err != nil
	})
}

// writeBackup writes a backup of store and dataDir's files to w and
// returns its manifest.
func writeBackup(w io.Writer, store *issuer.Store, dataDir string) (*backupManifest, error) {
	st, err := store.TakeState()
	if err != nil {
		return nil, err
	}
	defer st.Release()
	seq, err := st.Seq()
	if err != nil {
		return nil, err
	}
	m := &backupManifest{Version: backupVersion, Created: time.Now().UTC(), Seq: seq}
	var contents [][]byte
	for _, name := range backupFiles(dataDir) {
		b, err := os.ReadFile(filepath.Join(dataDir, name))
		if err != nil {
			return nil, err
		}
		if len(b) > maxBackupFile {
			return nil, fmt.Errorf("%s is larger than %d bytes", name, maxBackupFile)
		}
		m.Files = append(m.Files, backupFile{Name: name, Size: len(b)})
		contents = append(contents, b)
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 256<<10)
	manifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	bw.WriteString(backupMagic)
	writeChunk(bw, manifest)
	for _, c := range contents {
		writeChunk(bw, c)
	}
	if _, err := st.WriteTo(bw); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if _, err := w.Write(append([]byte(trailerMagic), h.Sum(nil)...)); err != nil {
		return nil, err
	}
	return m, nil
}

// writeChunk writes b with its uvarint length.
func writeChunk(w *bufio.Writer, b []byte) {
	var n [binary.MaxVarintLen64]byte
	w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))])
	w.Write(b)
}

// backupHandler serves GET /v1/cluster/backup (cluster key): the backup
// streamed as it is made. A failure midway ends the body without its
// trailer, which the client refuses.
func backupHandler(fs *feed.Server, store *issuer.Store, dataDir string, log *slog.Logger) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if !fs.Authorized(ctx) {
			fs.Deny(ctx)
			return
		}
		ctx.SetContentType("application/octet-stream")
		conn := ctx.Conn()
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			start := time.Now()
			// The server's WriteTimeout bounds the whole response: a
			// large store keeps the deadline moving while it makes
			// progress.
			m, err := writeBackup(&progressWriter{w: w, conn: conn}, store, dataDir)
			if err != nil {
				log.Error("backup", "err", err)
				return
			}
			if err := w.Flush(); err != nil {
				log.Warn("backup: the client went away", "err", err)
				return
			}
			log.Info("backup taken", "seq", m.Seq, "files", len(m.Files), "took", time.Since(start).Round(time.Millisecond).String())
		})
	}
}

// progressWriter moves conn's write deadline 30s ahead each second in
// which writes go through.
type progressWriter struct {
	w     io.Writer
	conn  net.Conn
	moved time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if now := time.Now(); now.Sub(p.moved) > time.Second {
		_ = p.conn.SetWriteDeadline(now.Add(30 * time.Second))
		p.moved = now
	}
	return p.w.Write(b)
}

// errCorrupt marks a backup file that fails its checks.
var errCorrupt = errors.New("backup file is corrupt or truncated")

// verifyBackup checks the file at path: its magic, its trailer and the
// SHA-256 of everything before it. It returns the file's size.
func verifyBackup(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if size < int64(len(backupMagic)+trailerLen) {
		return 0, fmt.Errorf("%w: %s is %d bytes, too short for a backup", errCorrupt, path, size)
	}
	head := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != backupMagic {
		return 0, fmt.Errorf("%w: %s is not a heliosd backup (no %q header)", errCorrupt, path, backupMagic)
	}
	trailer := make([]byte, trailerLen)
	if _, err := f.ReadAt(trailer, size-int64(trailerLen)); err != nil {
		return 0, err
	}
	if string(trailer[:len(trailerMagic)]) != trailerMagic {
		return 0, fmt.Errorf("%w: %s has no end marker (cut short?)", errCorrupt, path)
	}
	h := sha256.New()
	h.Write(head)
	if err := copyN(h, f, size-int64(trailerLen)-int64(len(head))); err != nil {
		return 0, err
	}
	if string(h.Sum(nil)) != string(trailer[len(trailerMagic):]) {
		return 0, fmt.Errorf("%w: %s fails its SHA-256 checksum", errCorrupt, path)
	}
	return size, nil
}

func copyN(h hash.Hash, r io.Reader, n int64) error {
	_, err := io.CopyN(h, r, n)
	return err
}
