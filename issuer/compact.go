package issuer

import (
	"encoding/json"
	"time"
)

// compactChunk bounds the log entries one compaction command drops, so the
// writer never holds a group for long.
const compactChunk = 8192

// compactEvery is how often the maintenance loop compacts the log.
const compactEvery = 10 * time.Minute

// Compact drops from the revocation log the entries of tokens that expired
// before now (per-token revocations and IP allowlists: a verifier refuses
// such tokens anyway) through the writer, and moves the compacted watermark
// up. Followers behind the watermark catch up from a snapshot. It returns
// how many entries it dropped.
func (s *Store) Compact(now time.Time) (int, error) {
	cut := now.Unix()
	var seqs []uint64
	err := s.scan(prefixRevocLog, func(_, v []byte) error {
		var e LogEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		if (e.Kind == LogToken || e.Kind == LogIPs) && e.ExpiresAt < cut {
			seqs = append(seqs, e.Seq)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(seqs); i += compactChunk {
		chunk := seqs[i:min(i+compactChunk, len(seqs))]
		if _, err := s.Submit(&Command{Op: OpCompact, At: cut, Seqs: chunk}); err != nil {
			return i, err
		}
	}
	if len(seqs) > 0 {
		s.log.Info("revocation log compacted", "dropped", len(seqs), "compacted", s.Compacted())
	}
	return len(seqs), nil
}
