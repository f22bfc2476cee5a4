package issuer

import "github.com/VictoriaMetrics/metrics"

// Issuer metrics, in the process's default VictoriaMetrics set (served by
// GET /metrics). Updating them does not allocate.
var (
	metricCommits     = metrics.NewCounter(`helios_issuer_commits_total`)
	metricCommands    = metrics.NewCounter(`helios_issuer_commands_total`)
	metricCommitFails = metrics.NewCounter(`helios_issuer_commit_errors_total`)
	metricCommitTime  = metrics.NewHistogram(`helios_issuer_commit_seconds`)
	metricGroupSize   = metrics.NewHistogram(`helios_issuer_group_size`)
	// metricStorageRefused counts commands refused because the store's
	// file system was below its free-space reserve (STORAGE_FULL).
	metricStorageRefused = metrics.NewCounter(`helios_issuer_storage_refused_total`)
)

// registerWatermark exposes the store's committed sequence number. Only the
// first store of a process is exported (tests open several).
func registerWatermark(s *Store) {
	_ = metrics.GetOrCreateGauge(`helios_issuer_last_seq`, func() float64 { return float64(s.LastSeq()) })
	// 1 once Pebble failed a write: writes are refused until a restart.
	_ = metrics.GetOrCreateGauge(`helios_issuer_storage_failed`, func() float64 {
		if s.failure() != nil {
			return 1
		}
		return 0
	})
}
