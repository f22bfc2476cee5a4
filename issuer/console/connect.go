package console

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/connstr"
	"github.com/heliosdb/auth/internal/listeners"
	"github.com/heliosdb/auth/issuer"
)

// connectLine is one ready-to-paste command (internal/connstr's, the same
// heliosd prints at start).
type connectLine struct {
	ID, Client, Line string
}

// snippet is a few lines of application code from the guide, with this
// gateway's host, port, database and TLS options.
type snippet struct {
	ID, Title, Code string
}

// connectData is what the Connect section shows.
type connectData struct {
	Database  string
	Databases []issuer.DatabaseInfo
	TestOnly  bool // a test token: test databases only
	NoTestDB  bool // … and there is none yet
	CAFile    string
	Lines     []connectLine
	Snippets  []snippet
}

// connectPage shows the lines for $HELIOS_TOKEN and the database chosen
// with ?db=.
func (c *Console) connectPage(ctx *fasthttp.RequestCtx, s *session) {
	db := string(ctx.QueryArgs().Peek("db"))
	c.render(ctx, http.StatusOK, "connect.html", s.view("Connect", "connect", c.connect(ctx, &s.claims, db, false)))
}

// connect builds the Connect section for database db (default: main, or
// for a test token the first test database).
func (c *Console) connect(ctx *fasthttp.RequestCtx, claims *core.Claims, db string, testOnly bool) *connectData {
	d := &connectData{Databases: c.svc.ListDatabases(claims), TestOnly: testOnly, CAFile: c.opts.CAFile}
	known := false
	for _, x := range d.Databases {
		known = known || x.Name == db
	}
	switch {
	case known:
	case testOnly:
		db = firstTestDatabase(d.Databases)
		d.NoTestDB = db == ""
	default:
		db = issuerDefaultDatabase(d.Databases)
	}
	if db == "" {
		db = connstr.Database
	}
	d.Database = db
	reqHost := requestHost(ctx)
	hostPort := map[string][2]string{}
	// Database clients first, then REST and the CLI.
	var order []listeners.Listener
	for _, l := range listeners.All {
		if l.Protocol != listeners.HTTP {
			order = append(order, l)
		}
	}
	for _, l := range listeners.All {
		if l.Protocol == listeners.HTTP {
			order = append(order, l)
		}
	}
	for _, l := range order {
		host, port, ok := listenerHost(c.opts.Listen[l.Protocol], reqHost)
		if !ok {
			continue
		}
		hostPort[l.Protocol] = [2]string{host, port}
		for _, cmd := range connstr.Commands(l.Protocol, host, port, c.opts.CAFile, db, true) {
			d.Lines = append(d.Lines, connectLine{ID: "connect-" + lineID(cmd.Client), Client: cmd.Client, Line: cmd.Line})
		}
	}
	d.Snippets = snippets(hostPort, db, c.opts.CAFile)
	return d
}

// issuerDefaultDatabase is "main" when it exists, else the first database.
func issuerDefaultDatabase(list []issuer.DatabaseInfo) string {
	for _, d := range list {
		if d.Name == connstr.Database {
			return d.Name
		}
	}
	if len(list) > 0 {
		return list[0].Name
	}
	return ""
}

// lineID makes an element id of a client's name ("helios CLI" → "helios-cli").
func lineID(client string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		case r == ' ':
			return '-'
		}
		return -1
	}, client)
}

// requestHost is the host name the browser reached the console with.
func requestHost(ctx *fasthttp.RequestCtx) string {
	h := string(ctx.Host())
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.Trim(h, "[]")
}

// listenerHost splits a listener's address; a wildcard host becomes the
// host the browser used. ok is false for a disabled listener.
func listenerHost(addr, reqHost string) (host, port string, ok bool) {
	if addr == "" {
		return "", "", false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", false
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = reqHost
	}
	return host, port, true
}

// snippets are the guide's Python and Node.js examples for the listeners in
// hostPort, verifying the server with ca when it is set.
func snippets(hostPort map[string][2]string, db, ca string) []snippet {
	q := strconv.Quote // Python strings
	js := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'" }
	var out []snippet
	if hp, ok := hostPort["postgres"]; ok {
		root := "system"
		if ca != "" {
			root = ca
		}
		out = append(out, snippet{"snippet-psycopg2", "Python · psycopg2", "import os\nimport psycopg2\n\n" +
			"conn = psycopg2.connect(\n    host=" + q(hp[0]) + ", port=" + hp[1] + ", dbname=" + q(db) + ", user=\"default\",\n" +
			"    password=os.environ[\"HELIOS_TOKEN\"],\n    sslmode=\"verify-full\", sslrootcert=" + q(root) + ",\n)"})
		ssl := "ssl: true"
		if ca != "" {
			ssl = "ssl: { ca: fs.readFileSync(" + js(ca) + ") }"
		}
		out = append(out, snippet{"snippet-node-pg", "Node.js · pg", "const fs = require('fs');\nconst { Pool } = require('pg');\n\n" +
			"const pool = new Pool({\n  host: " + js(hp[0]) + ", port: " + hp[1] + ", database: " + js(db) + ", user: 'default',\n" +
			"  password: process.env.HELIOS_TOKEN,\n  " + ssl + ",\n});"})
	}
	if hp, ok := hostPort["mysql"]; ok {
		ssl := "ssl: {}"
		if ca != "" {
			ssl = "ssl: { ca: fs.readFileSync(" + js(ca) + ") }"
		}
		out = append(out, snippet{"snippet-node-mysql2", "Node.js · mysql2", "const fs = require('fs');\nconst mysql = require('mysql2/promise');\n\n" +
			"const connection = await mysql.createConnection({\n  host: " + js(hp[0]) + ", port: " + hp[1] + ", database: " + js(db) + ", user: 'default',\n" +
			"  password: process.env.HELIOS_TOKEN,\n  " + ssl + ",\n});"})
	}
	if hp, ok := hostPort["mongodb"]; ok {
		uri := connstr.MongoURI(net.JoinHostPort(hp[0], hp[1]), db, ca, true)
		uri = strings.Replace(uri, "$HELIOS_TOKEN", "{os.environ['HELIOS_TOKEN']}", 1)
		out = append(out, snippet{"snippet-pymongo", "Python · PyMongo", "import os\nfrom pymongo import MongoClient\n\n" +
			"client = MongoClient(\n    f\"" + uri + "\"\n)"})
	}
	if hp, ok := hostPort["redis"]; ok {
		caOpt := ""
		if ca != "" {
			caOpt = ", ssl_ca_certs=" + q(ca)
		}
		out = append(out, snippet{"snippet-redis-py", "Python · redis-py", "import os\nimport redis\n\n" +
			"r = redis.Redis(\n    host=" + q(hp[0]) + ", port=" + hp[1] + ", username=\"default\",\n" +
			"    password=os.environ[\"HELIOS_TOKEN\"], ssl=True" + caOpt + ",\n)"})
	}
	return out
}
