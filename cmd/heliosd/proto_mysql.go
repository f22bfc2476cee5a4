package main

import (
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/mysql"
)

// The MySQL front end on --mysql-listen, with the gateway's policy (IP
// allowlists, test databases) and last_used recorder: a proxy to
// --mysql-upstream when one is configured, the built-in responder
// otherwise.
func init() {
	registerProtocol(protocolFactory{
		name: "mysql",
		build: func(d *gatewayDeps) (netio.Protocol, error) {
			key, err := mysql.LoadOrGenerateKey(d.DataDir)
			if err != nil {
				return nil, err
			}
			return mysql.New(mysql.Options{Key: key, TLS: d.TLS != nil, Policy: d.Policy, Usage: d.Usage, Upstream: d.Upstreams.MySQL})
		},
	})
}
