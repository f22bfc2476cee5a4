package main

import (
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/redis"
)

// The Redis front end on --redis-listen, with the gateway's policy (IP
// allowlists, test databases) and last_used recorder.
func init() {
	registerProtocol(protocolFactory{
		name: "redis",
		build: func(d *gatewayDeps) (netio.Protocol, error) {
			return redis.New(redis.Options{Policy: d.Policy, Usage: d.Usage}), nil
		},
	})
}
