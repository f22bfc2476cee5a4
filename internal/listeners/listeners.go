// Package listeners is the one list of heliosd's listen addresses: for each
// front end, the flag that sets its address, the TOML key and environment
// variable named after that flag, and its default. heliosd builds its
// configuration (flags, TOML, HELIOS_* variables), --help, the host names
// of its generated certificate and its gateway from this list, and the test
// harness (internal/testdaemon) the listener flags it starts heliosd with,
// so a new protocol reaches all of them through one entry here (package
// protocols has the whole checklist).
//
// The package holds names and defaults only: it imports nothing of the
// daemon, so both the daemon and its tests can use it.
package listeners

import "strings"

// Listener is one listen address heliosd serves.
type Listener struct {
	// Protocol names the front end: its netio.Protocol's Name ("postgres"),
	// or HTTP for the REST API.
	Protocol string
	// Flag is heliosd's flag for the address ("pg-listen"). Its TOML key
	// (TOMLKey) and environment variable (HELIOS_PG_LISTEN) are named
	// after it, as every setting's are.
	Flag string
	// Default is the address heliosd listens on when nothing sets one
	// (every listener on loopback). An empty address disables a listener.
	Default string
	// Title names the protocol for people ("PostgreSQL"), in --help.
	Title string
}

// HTTP is the Protocol of the REST API's listener, which the daemon serves
// with its HTTP server rather than a netio.Protocol.
const HTTP = "http"

// All lists every listener heliosd has, the REST API first.
var All = [...]Listener{
	{Protocol: HTTP, Flag: "http-listen", Default: "127.0.0.1:8080", Title: "REST API"},
	{Protocol: "postgres", Flag: "pg-listen", Default: "127.0.0.1:5432", Title: "PostgreSQL"},
	{Protocol: "redis", Flag: "redis-listen", Default: "127.0.0.1:6379", Title: "Redis"},
	{Protocol: "mysql", Flag: "mysql-listen", Default: "127.0.0.1:3306", Title: "MySQL"},
	{Protocol: "mongodb", Flag: "mongo-listen", Default: "127.0.0.1:27017", Title: "MongoDB"},
}

// TOMLKey is the listener's key in heliosd's TOML file: its flag with
// underscores ("pg_listen").
func (l Listener) TOMLKey() string { return strings.ReplaceAll(l.Flag, "-", "_") }
