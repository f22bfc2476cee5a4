package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// UpstreamOptions configure proxy mode: the real MySQL or MariaDB server
// behind the gateway.
type UpstreamOptions struct {
	// AdminURL is an administrator connection
	// (mysql://root:pw@127.0.0.1:3307/): heliosd provisions its users and
	// databases with it. Never logged.
	AdminURL string
	// PasswordsFile keeps the roles' random passwords (0600; with AdminURL).
	PasswordsFile string
	// RoleURLs, instead of AdminURL, log in as users someone else
	// provisioned (role name → mysql://user:pw@host:port/, one server for
	// all; the user may have any name): gateway nodes receive them from
	// the issuer (Upstream.RoleURLs), operators give them in
	// --mysql-upstream-roles-file. Nothing is provisioned then.
	RoleURLs map[string]string
	// PoolSize bounds the server connections of one role, database and
	// client flavour (default 20); PoolWait is how long a client waits for
	// one when all are in use (default 5s), then it gets 1040.
	PoolSize int
	PoolWait time.Duration
	// Logger receives provisioning and connection messages (never a
	// password).
	Logger *slog.Logger
}

// Upstream is the MySQL or MariaDB server behind the gateway: its
// least-privilege users (provisioned with the administrator connection)
// and the pool of server connections logged in as them.
type Upstream struct {
	opts  UpstreamOptions
	addr  string  // host:port
	admin *sql.DB // the administrator connection (go-sql-driver); nil in RoleURLs mode
	// logins are how the roles log in, replaced whole by SetRoleURLs.
	logins atomic.Pointer[roleLogins]
	pool   *upstream.Pool[*serverConn]
	log    *slog.Logger
	// provisionMu runs one provisioning at a time.
	provisionMu sync.Mutex
	// version is the server version of the last login, which the gateway's
	// greeting announces in its place (nil until one succeeded).
	version atomic.Pointer[string]
	// status is what the last attempt to reach the server found.
	status upstream.Status
}

// Health is what /healthz says about the upstream (upstream.Health).
type Health = upstream.Health

// Health reports the upstream's last known state (no I/O).
// Idle counts the server connections parked on the event loops too.
func (u *Upstream) Health() Health {
	st := u.pool.Stats()
	h := u.status.Health(u.addr, st)
	for k := range st {
		h.Idle += netio.Parked(parkKey{u, k})
	}
	return h
}

// record keeps the outcome of an attempt to reach the server (no error
// text here holds a password: the handshake never quotes it, and
// go-sql-driver's errors do not).
func (u *Upstream) record(err error) {
	var se *serverError
	var me *gomysql.MySQLError
	switch {
	case errors.As(err, &se):
		u.status.Record(u.addr, true, strconv.Itoa(int(se.Code))+": "+se.Message)
	case errors.As(err, &me):
		u.status.Record(u.addr, true, strconv.Itoa(int(me.Number))+": "+me.Message)
	case err != nil:
		u.status.Record(u.addr, false, err.Error())
	default:
		u.status.Record(u.addr, true, "")
	}
}

// roleLogins are the user name and password of each role (by role name).
type roleLogins struct {
	users     map[string]string // nil: the role names themselves (provisioned by heliosd)
	passwords upstream.Passwords
}

// serverConn is one authenticated server connection. The proxy speaks the
// protocol on it directly.
type serverConn struct {
	net.Conn
	threadID uint32 // the server's connection id (for KILL)
	status   uint16 // the status flags of the last OK the gateway read itself
}

// NewUpstream checks the administrator URL and loads (or makes) the roles'
// passwords; it connects to nothing (Provision does).
func NewUpstream(o UpstreamOptions) (*Upstream, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AdminURL == "" {
		u := &Upstream{opts: o, log: o.Logger}
		if err := u.SetRoleURLs(o.RoleURLs); err != nil {
			return nil, err
		}
		u.pool = upstream.NewPool(upstream.PoolOptions{Size: o.PoolSize, Wait: o.PoolWait, Unreachable: unreachable, Reclaim: u.reclaim}, u.dial, healthy)
		return u, nil
	}
	cfg, err := parseAdminURL(o.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("--mysql-upstream: %w", err)
	}
	pw, err := upstream.LoadPasswords(o.PasswordsFile)
	if err != nil {
		return nil, err
	}
	connector, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("--mysql-upstream: %w", err)
	}
	admin := sql.OpenDB(connector)
	admin.SetMaxOpenConns(2)
	admin.SetConnMaxIdleTime(time.Minute)
	u := &Upstream{opts: o, addr: cfg.Addr, admin: admin, log: o.Logger}
	u.logins.Store(&roleLogins{passwords: pw})
	u.pool = upstream.NewPool(upstream.PoolOptions{Size: o.PoolSize, Wait: o.PoolWait, Unreachable: unreachable, Reclaim: u.reclaim}, u.dial, healthy)
	return u, nil
}

// unreachable tells a dial that did not reach the server (refused, timed
// out, cut during the greeting) from one it answered: after the former
// the pool backs off.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded)
}

// parseAdminURL reads mysql://user:password@host:port/ into a go-sql-driver
// configuration; its errors never quote the URL (it holds a password).
func parseAdminURL(s string) (*gomysql.Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("cannot parse the URL (expected mysql://user:password@host:port/)")
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return nil, errors.New("the URL must start with mysql:// (mysql://user:password@host:port/)")
	}
	if u.User == nil || u.User.Username() == "" {
		return nil, errors.New("the URL names no user (mysql://user:password@host:port/)")
	}
	cfg := gomysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "3306"
	}
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, port)
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 5*time.Second, time.Minute, time.Minute
	return cfg, nil
}

// Close closes the pool's idle connections and the administrator
// connection.
func (u *Upstream) Close() {
	u.pool.Close()
	if u.admin != nil {
		_ = u.admin.Close()
	}
}

// password is role r's password.
func (u *Upstream) password(r upstream.Role) string { return u.logins.Load().passwords.For(r) }

// user is the user role r logs in as.
func (u *Upstream) user(r upstream.Role) string {
	if name, ok := u.logins.Load().users[r.Name()]; ok {
		return name
	}
	return r.Name()
}

// SetRoleURLs replaces how the roles log in (role name →
// mysql://user:password@host:port/, one server for all): a gateway node
// following the issuer. Connections already open are not touched.
func (u *Upstream) SetRoleURLs(urls map[string]string) error {
	pw, users := upstream.Passwords{}, map[string]string{}
	addr := ""
	for _, r := range upstream.Roles {
		s, ok := urls[r.Name()]
		if !ok {
			return fmt.Errorf("MySQL upstream: no URL for role %s", r.Name())
		}
		cfg, err := parseAdminURL(s)
		if err != nil {
			return fmt.Errorf("MySQL upstream, role %s: %w", r.Name(), err)
		}
		if addr != "" && cfg.Addr != addr {
			return errors.New("MySQL upstream: the role URLs name different servers")
		}
		addr, pw[r.Name()], users[r.Name()] = cfg.Addr, cfg.Passwd, cfg.User
	}
	if u.addr != "" && u.addr != addr {
		return errors.New("MySQL upstream: the role URLs moved to another server (restart heliosd for that)")
	}
	u.addr = addr
	u.logins.Store(&roleLogins{users: users, passwords: pw})
	return nil
}

// RoleURLs returns how each role logs in, as URLs a gateway node can use:
// the issuer serves them over the cluster channel. Nil in RoleURLs mode.
func (u *Upstream) RoleURLs() map[string]string {
	if u.admin == nil {
		return nil
	}
	m := make(map[string]string, len(upstream.Roles))
	for _, r := range upstream.Roles {
		ru := url.URL{Scheme: "mysql", User: url.UserPassword(u.user(r), u.password(r)), Host: u.addr, Path: "/"}
		m[r.Name()] = ru.String()
	}
	return m
}

// Address is the server's host:port, for messages.
func (u *Upstream) Address() string { return u.addr }

// serverVersion is the version the upstream announced at the last login,
// "" before one.
func (u *Upstream) serverVersion() string {
	if v := u.version.Load(); v != nil {
		return *v
	}
	return ""
}

// variant is the pool key's Variant for a client's negotiated capabilities
// and character set: the format flags, and the collation id above them.
func variant(caps uint32, charset byte) uint64 {
	return uint64(caps&formatCaps) | uint64(charset)<<32
}

// get takes a server connection for k. When the login is refused because
// the user, its grant or the database is not there yet (an upstream that
// was down at start, a database registered while it was), it provisions
// them with the administrator connection and tries once more.
func (u *Upstream) get(ctx context.Context, k upstream.Key, test bool) (*serverConn, error) {
	sc, err := u.pool.Get(ctx, k)
	var se *serverError
	if err == nil || !errors.As(err, &se) {
		return sc, err
	}
	switch se.Code {
	case erAccessDenied, erDBAccessDenied, erBadDB:
	default:
		return nil, err
	}
	if u.admin == nil {
		return nil, err // RoleURLs mode: whoever provisioned the users must fix it
	}
	var dbs []string
	if k.Database != "" {
		dbs = []string{k.Database}
	}
	u.provisionMu.Lock()
	perr := u.Provision(ctx, dbs, func(string) bool { return test })
	u.provisionMu.Unlock()
	if perr != nil {
		u.log.Warn("MySQL upstream provisioning failed", "upstream", u.addr, "database", k.Database, "err", perr)
		return nil, err
	}
	return u.pool.Get(ctx, k)
}

// dial logs in as k's role to k's database with k's format flags and
// character set.
func (u *Upstream) dial(ctx context.Context, k upstream.Key) (*serverConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		u.record(err)
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	g, status, err := handshake(c, loginRequest{user: u.user(k.Role), password: u.password(k.Role),
		database: k.Database, caps: uint32(k.Variant) & formatCaps, charset: byte(k.Variant >> 32)})
	u.record(err)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	if u.serverVersion() != g.version {
		v := g.version
		u.version.Store(&v)
	}
	return &serverConn{Conn: c, threadID: g.threadID, status: status}, nil
}

// healthy reports whether an idle server connection may be handed out
// (upstream.Alive).
func healthy(c *serverConn) bool { return upstream.Alive(c.Conn) }

// kill ends a server connection's thread on the server (KILL CONNECTION),
// for a connection of role r the gateway dropped while it ran a statement:
// closing the socket alone leaves a SELECT SLEEP(…) or a lock wait
// running. It runs on the administrator connection, or, in RoleURLs mode,
// on a new connection of the same user (a user may end its own threads).
// It runs in the background; errors only matter to the log.
func (u *Upstream) kill(r upstream.Role, threadID uint32) {
	q := "KILL CONNECTION " + strconv.FormatUint(uint64(threadID), 10)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if u.admin != nil {
			_, err = u.admin.ExecContext(ctx, q)
		} else {
			err = u.killAs(ctx, r, q)
		}
		var me *gomysql.MySQLError
		var se *serverError
		if err != nil && !(errors.As(err, &me) && me.Number == erNoSuchThread) && !(errors.As(err, &se) && se.Code == erNoSuchThread) {
			u.log.Warn("MySQL upstream: could not end a dropped server connection", "upstream", u.addr, "thread", threadID, "err", err)
		}
	}()
}

// erNoSuchThread is KILL's error for a thread that has ended already.
const erNoSuchThread = 1094

// killAs runs the KILL query q logged in as role r.
func (u *Upstream) killAs(ctx context.Context, r upstream.Role, q string) error {
	sc, err := u.dial(ctx, upstream.Key{Role: r, Variant: variant(0, collationUTF8MB4GeneralCI)})
	if err != nil {
		return err
	}
	defer sc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = sc.SetDeadline(dl)
	}
	_, err = roundTrip(sc, append([]byte{comQuery}, q...))
	return err
}

// The privileges of each role level on each database it may reach (see
// the package documentation). Never FILE, SUPER, PROCESS, GRANT OPTION or
// any other global privilege.
const (
	privilegesRead  = "SELECT, SHOW VIEW"
	privilegesWrite = privilegesRead + ", INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE"
	privilegesOwner = privilegesWrite + ", CREATE, ALTER, DROP, INDEX, CREATE VIEW, REFERENCES, TRIGGER, EVENT, CREATE ROUTINE, ALTER ROUTINE"
)

// privileges returns r's privileges on a database.
func privileges(r upstream.Role) string {
	switch r.Level() {
	case upstream.Read:
		return privilegesRead
	case upstream.Write:
		return privilegesWrite
	}
	return privilegesOwner
}

// admin SQL error numbers.
const (
	erNonexistingGrant = 1141 // ER_NONEXISTING_GRANT: REVOKE of a grant that is not there
	erNoSuchUser       = 1133 // ER_PASSWORD_NO_MATCH: a user that does not exist
)

// provisioner runs one provisioning on an administrator connection.
type provisioner struct {
	u       *Upstream
	conn    *sql.Conn
	mariadb bool
	// hosts are the host parts each user exists with: '%', and the hosts
	// of anonymous users, which MySQL and MariaDB would otherwise match
	// before 'helios_read'@'%' for a client from that host.
	hosts []string
}

// Provision creates or updates, idempotently, the six users with their
// passwords, and each database in databases (isTest tells the test ones)
// with the grants that confine the test users to test databases. In
// RoleURLs mode it creates nothing: it logs in once as the read user, which
// checks that login and learns the server's version.
func (u *Upstream) Provision(ctx context.Context, databases []string, isTest func(string) bool) error {
	if u.admin == nil {
		return u.probe(ctx)
	}
	p, err := u.provisioner(ctx)
	if err != nil {
		return err
	}
	defer p.conn.Close()
	for _, r := range upstream.Roles {
		for _, h := range p.hosts {
			user := quoteString(r.Name()) + "@" + quoteString(h)
			auth := " IDENTIFIED WITH caching_sha2_password BY " + quoteString(u.password(r))
			if p.mariadb {
				auth = " IDENTIFIED VIA mysql_native_password USING PASSWORD(" + quoteString(u.password(r)) + ")"
			}
			for _, s := range []string{"CREATE USER IF NOT EXISTS " + user + auth, "ALTER USER " + user + auth} {
				if _, err := p.conn.ExecContext(ctx, s); err != nil {
					return fmt.Errorf("provision user %s@%s: %w", r.Name(), h, err)
				}
			}
		}
	}
	for _, db := range databases {
		if err := p.database(ctx, db, isTest(db)); err != nil {
			return err
		}
	}
	if u.serverVersion() == "" {
		return u.probe(ctx)
	}
	return nil
}

// probe logs in once as the read user, which checks its password and
// learns the server's version for the gateway's greeting, and logs out.
func (u *Upstream) probe(ctx context.Context) error {
	sc, err := u.dial(ctx, upstream.Key{Role: upstream.Read, Variant: variant(0, collationUTF8MB4GeneralCI)})
	if err != nil {
		return fmt.Errorf("MySQL upstream %s: log in as %s: %w", u.addr, u.user(upstream.Read), err)
	}
	b, start := beginPacket(nil, 0)
	_, _ = sc.Write(endPacket(append(b, comQuit), start))
	return sc.Close()
}

// provisioner opens an administrator connection and learns the server's
// flavour and the hosts of its anonymous users.
func (u *Upstream) provisioner(ctx context.Context) (*provisioner, error) {
	conn, err := u.admin.Conn(ctx)
	if err == nil {
		err = conn.PingContext(ctx)
		if err != nil {
			conn.Close()
		}
	}
	u.record(err)
	if err != nil {
		return nil, fmt.Errorf("MySQL upstream %s: administrator connection: %w", u.addr, err)
	}
	p := &provisioner{u: u, conn: conn, hosts: []string{"%"}}
	var version string
	if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		conn.Close()
		return nil, err
	}
	p.mariadb = strings.Contains(strings.ToLower(version), "mariadb")
	rows, err := conn.QueryContext(ctx, "SELECT DISTINCT Host FROM mysql.user WHERE User = '' AND Host <> '%'")
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			conn.Close()
			return nil, err
		}
		p.hosts = append(p.hosts, h)
	}
	if err := rows.Err(); err != nil {
		conn.Close()
		return nil, err
	}
	if len(p.hosts) > 1 {
		u.log.Warn("MySQL upstream has anonymous users: the HeliosDB users are created for their hosts too", "upstream", u.addr, "hosts", p.hosts[1:])
	}
	return p, nil
}

// database creates db when it does not exist and grants it to the users
// that may reach it: the production users always, the test users only
// when db is a test database (and a production database's grants to them
// are revoked, in case it was a test database once).
func (p *provisioner) database(ctx context.Context, db string, test bool) error {
	if _, err := p.conn.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(db)); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	on := grantTarget(db)
	for _, r := range upstream.Roles {
		for _, h := range p.hosts {
			user := quoteString(r.Name()) + "@" + quoteString(h)
			var err error
			if !r.IsTest() || test {
				_, err = p.conn.ExecContext(ctx, "GRANT "+privileges(r)+" ON "+on+" TO "+user)
			} else {
				err = p.revoke(ctx, on, user)
			}
			if err != nil {
				return fmt.Errorf("grant database %s to %s: %w", db, r.Name(), err)
			}
		}
	}
	return nil
}

// revoke takes every privilege on target from user; a grant that is not
// there is no error.
func (p *provisioner) revoke(ctx context.Context, target, user string) error {
	_, err := p.conn.ExecContext(ctx, "REVOKE ALL PRIVILEGES ON "+target+" FROM "+user)
	var me *gomysql.MySQLError
	if errors.As(err, &me) && (me.Number == erNonexistingGrant || me.Number == erNoSuchUser) {
		return nil
	}
	return err
}

// CreateDatabase creates db (when missing) and grants it to the users that
// may reach it: POST /v1/databases on this upstream.
func (u *Upstream) CreateDatabase(ctx context.Context, db string, test bool) error {
	if u.admin == nil {
		return nil // RoleURLs mode: databases are made by whoever made the users
	}
	p, err := u.provisioner(ctx)
	if err != nil {
		return err
	}
	defer p.conn.Close()
	return p.database(ctx, db, test)
}

// DropDatabase drops db (when present) and revokes its grants, which MySQL
// would otherwise keep for a database of the same name created later:
// DELETE /v1/databases on this upstream.
func (u *Upstream) DropDatabase(ctx context.Context, db string) error {
	if u.admin == nil {
		return nil
	}
	p, err := u.provisioner(ctx)
	if err != nil {
		return err
	}
	defer p.conn.Close()
	if _, err := p.conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(db)); err != nil {
		return fmt.Errorf("drop database %s: %w", db, err)
	}
	on := grantTarget(db)
	for _, r := range upstream.Roles {
		for _, h := range p.hosts {
			if err := p.revoke(ctx, on, quoteString(r.Name())+"@"+quoteString(h)); err != nil {
				return fmt.Errorf("revoke database %s from %s: %w", db, r.Name(), err)
			}
		}
	}
	return nil
}

// quoteIdent quotes an identifier in backticks.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// grantTarget is `db`.* for GRANT and REVOKE, where _ and % in a database
// name are wildcards: they are escaped, so that the grant names db alone.
func grantTarget(db string) string {
	r := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`)
	return quoteIdent(r.Replace(db)) + ".*"
}

// quoteString quotes a string literal (backslashes escaped: the default
// sql_mode reads them as escapes).
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}
