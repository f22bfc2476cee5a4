// Package connstr writes the ready-to-paste client commands and connection
// strings that reach a HeliosDB gateway with TLS verification on: heliosd
// prints them when it starts, and protocols cite them in the errors that
// teach a client how to connect. The token is always the shell variable
// $HELIOS_TOKEN; this package must never be given a token.
package connstr

import (
	"fmt"
	"strings"

	"github.com/heliosdb/auth/internal/listeners"
)

// Database is the database the lines connect to: the one every data
// directory starts with (issuer.DefaultDatabase).
const Database = "main"

// Lines are the ready-to-paste lines for one listener: its client, with the CA
// option that client spells, and for HTTP also the helios CLI and Node.js,
// each as "<Client padded to 11> <command>", to the database Database.
func Lines(protocol, host, port, ca string, issuer bool) []string {
	cmds := Commands(protocol, host, port, ca, Database, issuer)
	lines := make([]string, 0, len(cmds))
	for _, c := range cmds {
		lines = append(lines, fmt.Sprintf("%-11s %s", c.Client, c.Line))
	}
	return lines
}

// Command is one ready-to-paste line: Client names what it is for
// ("PostgreSQL", "helios CLI"), Line is the shell command itself.
type Command struct {
	Client, Line string
}

// Commands are Lines as values, for database db (a registered database
// name, which needs no quoting).
func Commands(protocol, host, port, ca, db string, issuer bool) []Command {
	uriHost := host
	if strings.Contains(host, ":") {
		uriHost = "[" + host + "]"
	}
	hostPort := uriHost + ":" + port
	cred := "default:$HELIOS_TOKEN@"
	switch protocol {
	case "postgres":
		q := "sslmode=verify-full"
		if ca != "" {
			q += "&sslrootcert=" + queryEscape(ca)
		} else {
			q += "&sslrootcert=system"
		}
		return []Command{{"PostgreSQL", `psql "postgresql://` + cred + hostPort + "/" + queryEscape(db) + "?" + q + `"`}}
	case "mysql":
		opt := "--ssl-verify-server-cert"
		if ca != "" {
			opt = "--ssl-ca=" + shellQuote(ca) + " " + opt
		}
		return []Command{{"MySQL", `mariadb -h ` + shellQuote(host) + " -P " + port + ` -u default -p"$HELIOS_TOKEN" ` + opt + " " + shellQuote(db)}}
	case "mongodb":
		return []Command{{"MongoDB", `mongosh "` + MongoURI(hostPort, db, ca, true) + `"`}}
	case "redis":
		opt := "--tls"
		if ca != "" {
			opt += " --cacert " + shellQuote(ca)
		}
		return []Command{{"Redis", `redis-cli -h ` + shellQuote(host) + " -p " + port + " " + opt + ` --user default --pass "$HELIOS_TOKEN" --no-auth-warning`}}
	case listeners.HTTP:
		caOpt, caEnv, nodeEnv := "", "", ""
		if ca != "" {
			caOpt = "--cacert " + shellQuote(ca) + " "
			caEnv = " HELIOS_CA_CERT=" + shellQuote(ca)
			nodeEnv = "NODE_EXTRA_CA_CERTS=" + shellQuote(ca) + " "
		}
		cmds := []Command{{"REST", `curl ` + caOpt + `-H "Authorization: Bearer $HELIOS_TOKEN" -d '{"query":"SELECT 1"}' https://` + hostPort + "/api/v1/sql"}}
		if issuer {
			cmds = append(cmds, Command{"helios CLI", "export HELIOS_API_URL=https://" + hostPort + caEnv})
		}
		if nodeEnv != "" {
			cmds = append(cmds, Command{"Node.js", nodeEnv + "node app.js   # pg ssl: true, mysql2 ssl: {}, mongodb tls=true, ioredis tls: {}"})
		}
		return cmds
	}
	return nil
}

// MongoURI is the connection string that authenticates a MongoDB client at
// hostPort: SASL PLAIN with the token as the password, plus TLS and the CA
// file to trust (when ca is not "") when useTLS.
func MongoURI(hostPort, db, ca string, useTLS bool) string {
	q := "authMechanism=PLAIN"
	if useTLS {
		q += "&tls=true"
		if ca != "" {
			q += "&tlsCAFile=" + queryEscape(ca)
		}
	}
	return "mongodb://default:$HELIOS_TOKEN@" + hostPort + "/" + queryEscape(db) + "?" + q
}

// shellQuote quotes s for a POSIX shell when it holds anything beyond the
// characters every shell leaves alone.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@%+=,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// queryEscape percent-encodes a file path for a connection URI's query, keeping
// the characters a path is readable with.
func queryEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/._~-", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
