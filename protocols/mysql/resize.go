package mysql

import "time"

// Resize changes the server connection pool's size and wait while serving
// (heliosd's live reload; see upstream.Pool.Resize): a larger pool lets
// waiting clients in at once, a smaller one closes nothing but replaces no
// connection until fewer are open.
func (u *Upstream) Resize(size int, wait time.Duration) error { return u.pool.Resize(size, wait) }
