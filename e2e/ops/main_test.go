// Package ops tests running heliosd as an operator does on a bare-metal
// box, against the real binary: the systemd notification protocol
// (NOTIFY_SOCKET, READY/STOPPING/WATCHDOG), heliosd check-config, make
// install/uninstall with systemd-analyze verify on the unit, live reload
// (SIGHUP and heliosd reload) and backup/restore of the issuer store.
package ops

import (
	"testing"

	"github.com/heliosdb/auth/internal/testdaemon"
)

func TestMain(m *testing.M) {
	testdaemon.Main(m, func(func(func())) error { return nil })
}
