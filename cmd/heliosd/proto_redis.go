package main

import (
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/redis"
)

func init() {
	registerProtocol(protocolFactory{
		name:   "redis",
		listen: func(c *Config) string { return c.RedisListen },
		build:  func(*gatewayDeps) (netio.Protocol, error) { return redis.New(), nil },
	})
}
