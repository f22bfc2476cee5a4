package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runReloadCmd is `heliosd reload [--config F] [--data-dir D] [flags]`: it
// finds the daemon that holds the data directory (the pid in its lock
// file, which it checks is still locked), sends it SIGHUP, waits for the
// outcome in data-dir/reload.json and prints it: what changed, what was
// refused as needing a restart. It fails when no daemon holds the
// directory or the new configuration was refused.
func runReloadCmd(args []string, out io.Writer) error {
	cfg, err := loadConfig(args, os.LookupEnv, out)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	pid, err := lockHolder(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	path := filepath.Join(cfg.DataDir, reloadStatusFile)
	before := readReloadStatus(path)
	if err := signalReload(pid); err != nil {
		return fmt.Errorf("reload: signal heliosd (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := readReloadStatus(path)
		if st != nil && (before == nil || st.Seq != before.Seq || !st.Time.Equal(before.Time)) {
			if !st.OK {
				return fmt.Errorf("reload refused by heliosd (pid %d): %s", pid, st.Error)
			}
			fmt.Fprintf(out, "heliosd (pid %d) reloaded\n", pid)
			fmt.Fprintf(out, "changed: %s\n", orNone(st.Changed))
			fmt.Fprintf(out, "refused: %s\n", orNone(st.Refused))
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("reload: heliosd did not report within 15s (see its log)")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, "; ")
}

// readReloadStatus reads reload.json (nil when absent or unreadable).
func readReloadStatus(path string) *reloadStatus {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var st reloadStatus
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	return &st
}
