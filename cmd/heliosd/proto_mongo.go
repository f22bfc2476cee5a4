package main

import (
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/mongodb"
)

// The MongoDB front end on --mongo-listen (default 127.0.0.1:27017), with
// the gateway's policy (IP allowlists, test databases) and last_used
// recorder; its authentication advice names the CA file to trust.
func init() {
	registerProtocol(protocolFactory{
		name: "mongodb",
		build: func(d *gatewayDeps) (netio.Protocol, error) {
			return mongodb.New(mongodb.Options{Policy: d.Policy, Usage: d.Usage, CAFile: d.Config.caFile}), nil
		},
	})
}
