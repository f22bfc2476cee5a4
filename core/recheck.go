package core

import "time"

// Recheck checks claims that an earlier Verify accepted against the state
// of the world at now, without the token: everything Verify checks after the
// MAC, in the same order and with the same preallocated errors. The key must
// still be in the keyring (ErrUnknownKey) and not retired there
// (ErrKeyRetired); the token must not be issued in the future
// (ErrNotYetValid) nor expired (ErrExpired); and the revocation view must
// clear it (ErrRevoked, ErrLoggedOut, ErrKeyRetired, ErrUnavailable).
//
// It exists for protocols that cache a verified token's claims (MySQL's
// caching_sha2 fast authentication) and must re-check them on every use as
// a fresh verification would. It reads only the shared keyring and
// revocation view, and allocates nothing.
func (v *Verifier) Recheck(c *Claims, now time.Time) error {
	k := v.ring.Lookup(c.KeyID)
	if k == nil {
		return ErrUnknownKey
	}
	if k.Retired {
		return ErrKeyRetired
	}
	unix := now.Unix()
	if c.IssuedAt > unix+int64(MaxClockSkew/time.Second) {
		return ErrNotYetValid
	}
	if unix >= c.ExpiresAt {
		return ErrExpired
	}
	switch v.revs.Check(c.ID, c.Account, c.IssuedAt, c.KeyID) {
	case RevokedToken:
		return ErrRevoked
	case RevokedAccount:
		return ErrLoggedOut
	case RevokedKey:
		return ErrKeyRetired
	case RevocationUnavailable:
		return ErrUnavailable
	}
	return nil
}
