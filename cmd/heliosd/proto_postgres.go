package main

import (
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/postgres"
)

// The PostgreSQL front end on --pg-listen.
func init() {
	registerProtocol(protocolFactory{
		name: "postgres",
		build: func(d *gatewayDeps) (netio.Protocol, error) {
			return postgres.New(postgres.Options{Policy: d.Policy, Usage: d.Usage}), nil
		},
	})
}
