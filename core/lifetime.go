package core

import (
	"fmt"
	"time"
)

// Lifetimes are the default and maximum lifetimes of each token type.
type Lifetimes struct {
	Live    time.Duration // default 7 days (the guide's "configurable")
	Test    time.Duration // 24 hours
	Service time.Duration // 90 days
	// MaxDays bounds expires_in_days on creation.
	MaxDays int
}

// DefaultLifetimes returns the guide's lifetimes: live 7 days, test 24 hours,
// service 90 days, and expires_in_days up to 365.
func DefaultLifetimes() Lifetimes {
	return Lifetimes{Live: 7 * 24 * time.Hour, Test: 24 * time.Hour, Service: 90 * 24 * time.Hour, MaxDays: 365}
}

// Default returns the default lifetime of type t.
func (l Lifetimes) Default(t TokenType) time.Duration {
	switch t {
	case TypeTest:
		return l.Test
	case TypeService:
		return l.Service
	}
	return l.Live
}

// Expiry returns when a token of type t issued at issued expires: after its
// type's default lifetime, or after expiresInDays days when that is positive.
// A test token never outlives its 24-hour limit; days beyond MaxDays are an
// error that says the bound.
func (l Lifetimes) Expiry(t TokenType, issued time.Time, expiresInDays int) (time.Time, error) {
	if expiresInDays < 0 {
		return time.Time{}, fmt.Errorf("expires_in_days must be positive, got %d", expiresInDays)
	}
	if expiresInDays > l.MaxDays {
		return time.Time{}, fmt.Errorf("expires_in_days must be at most %d, got %d", l.MaxDays, expiresInDays)
	}
	d := l.Default(t)
	if expiresInDays > 0 {
		d = time.Duration(expiresInDays) * 24 * time.Hour
		if t == TypeTest && d > l.Test {
			return time.Time{}, fmt.Errorf("test tokens live at most %s; omit expires_in_days or use a live or service token", l.Test)
		}
	}
	return issued.Add(d).UTC().Truncate(time.Second), nil
}
