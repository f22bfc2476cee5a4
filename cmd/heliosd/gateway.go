package main

import (
	"crypto/tls"
	"log/slog"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// gatewayDeps is what a protocol front end may need from the daemon.
type gatewayDeps struct {
	Config      *Config
	Keyring     *core.Keyring
	Revocations core.RevocationView
	TLS         *tls.Config
	DataDir     string
	Logger      *slog.Logger
}

// protocolFactory builds one protocol front end. Each protocol registers its
// own in a file of this package (proto_<name>.go) from an init function.
type protocolFactory struct {
	// name is the protocol's label ("postgres").
	name string
	// listen returns the configured listen address ("" disables it).
	listen func(c *Config) string
	// build makes the protocol.
	build func(d *gatewayDeps) (netio.Protocol, error)
}

var protocolFactories []protocolFactory

// registerProtocol adds a protocol front end to the gateway.
func registerProtocol(f protocolFactory) { protocolFactories = append(protocolFactories, f) }
