package main

import (
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/mysql"
)

func init() {
	registerProtocol(protocolFactory{
		name:   "mysql",
		listen: func(c *Config) string { return c.MySQLListen },
		build: func(d *gatewayDeps) (netio.Protocol, error) {
			key, err := mysql.LoadOrGenerateKey(d.DataDir)
			if err != nil {
				return nil, err
			}
			return mysql.New(mysql.Config{Key: key, TLS: d.TLS != nil})
		},
	})
}
