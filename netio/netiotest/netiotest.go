// Package netiotest holds what tests need to drive a netio.Session without
// the transport. The daemon never imports it.
package netiotest

import (
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// NopObserver is a netio.Observer that records nothing, for a netio.Env
// built by a test.
type NopObserver struct{}

var _ netio.Observer = NopObserver{}

// Authenticated does nothing.
func (NopObserver) Authenticated(*netio.ConnInfo, *core.Claims, error, time.Time) {}

// Refused does nothing.
func (NopObserver) Refused(*netio.ConnInfo, netio.Outcome) {}

// Limit does nothing.
func (NopObserver) Limit(netio.Limit) {}
