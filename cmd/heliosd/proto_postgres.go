package main

import (
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/postgres"
)

// The PostgreSQL front end on --pg-listen: a proxy to --pg-upstream when one
// is configured, the built-in responder otherwise.
func init() {
	registerProtocol(protocolFactory{
		name: "postgres",
		build: func(d *gatewayDeps) (netio.Protocol, error) {
			return postgres.New(postgres.Options{Policy: d.Policy, Usage: d.Usage, Upstream: d.Upstreams.PG}), nil
		},
	})
}
