package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// UpstreamOptions configure proxy mode: the real PostgreSQL server behind
// the gateway.
type UpstreamOptions struct {
	// AdminURL is an administrator connection
	// (postgres://postgres:pw@127.0.0.1:5433/postgres): heliosd provisions
	// its roles and databases with it. Never logged.
	AdminURL string
	// PasswordsFile keeps the roles' random passwords (0600; with AdminURL).
	PasswordsFile string
	// RoleURLs, instead of AdminURL, log in as roles someone else
	// provisioned (role name → postgres://helios_read:pw@host/db): for
	// operators who will not hand over an administrator connection, and
	// for gateway nodes, which receive them from the issuer
	// (Upstream.RoleURLs). Nothing is provisioned then.
	RoleURLs map[string]string
	// PoolSize bounds the server connections of one role and database
	// (default 20); PoolWait is how long a client waits for one when all are
	// in use (default 5s), then it gets 53300.
	PoolSize int
	PoolWait time.Duration
	// SQLTimeout is the statement timeout of REST requests (POST
	// /api/v1/sql; default 30s).
	SQLTimeout time.Duration
	// Logger receives provisioning and connection messages (never a
	// password).
	Logger *slog.Logger
}

// Upstream is the PostgreSQL server behind the gateway: its least-privilege
// roles (provisioned with the administrator connection) and the pool of
// server connections logged in as them.
type Upstream struct {
	opts      UpstreamOptions
	admin     *pgconn.Config // nil: RoleURLs mode, nothing to provision with
	adminURL  string         // AdminURL, for RoleURLs
	passwords upstream.Passwords
	// logins is how each role logs in (user and password set), replaced
	// whole by SetRoleURLs.
	logins atomic.Pointer[map[upstream.Role]*pgconn.Config]
	pool   *upstream.Pool[*serverConn]
	log    *slog.Logger
	// provisionMu runs one provisioning at a time (a burst of first
	// connections would otherwise race to create the same roles).
	provisionMu sync.Mutex
	// state is what the last attempt to reach the server found.
	state atomic.Pointer[Health]
	// plain: every role logs in over TCP without TLS, so a server
	// connection can be registered on a client's event loop
	// (loopproxy.go); set with the logins.
	plain atomic.Bool
}

// Health is what /healthz says about the upstream: whether the last
// connection or provisioning attempt reached it, and its pools.
type Health struct {
	Address   string    `json:"address"`
	Reachable bool      `json:"reachable"`
	Error     string    `json:"error,omitempty"`
	Checked   time.Time `json:"checked"`
	// Open and Idle count the server connections of every pool.
	Open int `json:"open"`
	Idle int `json:"idle"`
}

// Health reports the upstream's last known state (no I/O).
func (u *Upstream) Health() Health {
	h := Health{Address: u.Address()}
	if s := u.state.Load(); s != nil {
		h = *s
	}
	for k, st := range u.pool.Stats() {
		h.Open += st[0]
		h.Idle += st[1] + netio.Parked(parkKey{u, k})
	}
	return h
}

// record keeps the outcome of an attempt to reach the server (the error's
// text never holds the password: pgconn redacts it).
func (u *Upstream) record(err error) {
	h := &Health{Address: u.Address(), Reachable: err == nil, Checked: time.Now().UTC()}
	var pe *pgconn.PgError
	if err != nil && !errors.As(err, &pe) {
		h.Error = err.Error()
	} else if err != nil {
		h.Reachable, h.Error = true, pe.Code+": "+pe.Message
	}
	u.state.Store(h)
}

// serverConn is one authenticated server connection, taken over from pgconn
// after its login (pgconn.Hijack): the proxy speaks the protocol on it.
type serverConn struct {
	net.Conn
	pid    uint32
	secret []byte
	// params are the server's ParameterStatus values as the client must
	// see them (kept current from the messages the pump forwards).
	params map[string]string
	addr   string // host:port, for cancel requests
}

// NewUpstream checks the administrator URL and loads (or makes) the roles'
// passwords, or takes the role URLs; it connects to nothing (Provision
// does).
func NewUpstream(o UpstreamOptions) (*Upstream, error) {
	if o.SQLTimeout <= 0 {
		o.SQLTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	u := &Upstream{opts: o, log: o.Logger}
	u.pool = upstream.NewPool(upstream.PoolOptions{Size: o.PoolSize, Wait: o.PoolWait, Unreachable: unreachable, Reclaim: u.reclaim}, u.dial, healthy)
	if o.AdminURL == "" {
		if err := u.SetRoleURLs(o.RoleURLs); err != nil {
			return nil, err
		}
		return u, nil
	}
	cfg, err := pgconn.ParseConfig(o.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("--pg-upstream: %s", redactURLError(err))
	}
	pw, err := upstream.LoadPasswords(o.PasswordsFile)
	if err != nil {
		return nil, err
	}
	u.admin, u.adminURL, u.passwords = cfg, o.AdminURL, pw
	logins := make(map[upstream.Role]*pgconn.Config, len(upstream.Roles))
	for _, r := range upstream.Roles {
		c := cfg.Copy()
		c.User, c.Password = r.Name(), pw.For(r)
		logins[r] = c
	}
	u.setLogins(logins)
	return u, nil
}

// setLogins replaces how the roles log in.
func (u *Upstream) setLogins(logins map[upstream.Role]*pgconn.Config) {
	plain := true
	for _, c := range logins {
		plain = plain && plainTCP(c)
	}
	u.logins.Store(&logins)
	u.plain.Store(plain)
}

// plainTCP reports whether c logs in over TCP without TLS (sslmode=disable,
// no fallback that would use TLS, not a Unix socket).
func plainTCP(c *pgconn.Config) bool {
	if c.TLSConfig != nil || strings.HasPrefix(c.Host, "/") {
		return false
	}
	for _, f := range c.Fallbacks {
		if f.TLSConfig != nil || strings.HasPrefix(f.Host, "/") {
			return false
		}
	}
	return true
}

// reclaim asks the event loops for a server connection of k parked there,
// for a client waiting in the pool (upstream.PoolOptions.Reclaim).
func (u *Upstream) reclaim(k upstream.Key) {
	netio.Reclaim(parkKey{u, k}, func(v any, nc net.Conn) {
		sc := v.(*serverConn)
		sc.Conn = nc
		u.pool.Put(k, sc)
	})
}

// SetRoleURLs replaces how the roles log in (role name → URL with its user
// and password): a gateway node following the issuer's rotation. Every
// role must be given; connections already open are not touched.
func (u *Upstream) SetRoleURLs(urls map[string]string) error {
	logins := make(map[upstream.Role]*pgconn.Config, len(upstream.Roles))
	for _, r := range upstream.Roles {
		s, ok := urls[r.Name()]
		if !ok {
			return fmt.Errorf("PostgreSQL upstream: no URL for role %s", r.Name())
		}
		c, err := pgconn.ParseConfig(s)
		if err != nil {
			return fmt.Errorf("PostgreSQL upstream, role %s: %s", r.Name(), redactURLError(err))
		}
		logins[r] = c
	}
	u.setLogins(logins)
	return nil
}

// RoleURLs returns how each role logs in, as URLs a gateway node can use
// (the administrator URL with the role's user and password): the issuer
// serves them to nodes over the cluster channel. Nil in RoleURLs mode or
// when the administrator connection is not a URL.
func (u *Upstream) RoleURLs() map[string]string {
	base, err := url.Parse(u.adminURL)
	if u.admin == nil || err != nil || base.Scheme == "" {
		return nil
	}
	m := make(map[string]string, len(upstream.Roles))
	for _, r := range upstream.Roles {
		ru := *base
		ru.User = url.UserPassword(r.Name(), u.passwords.For(r))
		m[r.Name()] = ru.String()
	}
	return m
}

// login is how role r logs in.
func (u *Upstream) login(r upstream.Role) *pgconn.Config { return (*u.logins.Load())[r] }

// redactURLError keeps pgconn's reason but never the URL it may quote.
func redactURLError(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return "cannot parse the URL: " + pe.Unwrap().Error()
	}
	return "cannot parse the URL"
}

// Close closes the pool's idle connections.
func (u *Upstream) Close() { u.pool.Close() }

// Address is the server's host:port, for messages.
func (u *Upstream) Address() string {
	c := u.admin
	if c == nil {
		c = u.login(upstream.Read)
	}
	return net.JoinHostPort(c.Host, fmt.Sprint(c.Port))
}

// get takes a server connection for k. When the login is refused because
// the role or the database is not there yet (an upstream that was down at
// start, a database registered while it was), it provisions them with the
// administrator connection and tries once more.
func (u *Upstream) get(ctx context.Context, k upstream.Key, test bool) (*serverConn, error) {
	sc, err := u.pool.Get(ctx, k)
	var pe *pgconn.PgError
	if err == nil || !errors.As(err, &pe) {
		return sc, err
	}
	switch pe.Code {
	case "28P01", "28000", "3D000", "42501": // password/role, no database, no CONNECT
	default:
		return nil, err
	}
	if u.admin == nil {
		return nil, err // RoleURLs mode: whoever provisioned the roles must fix it
	}
	u.provisionMu.Lock()
	perr := u.Provision(ctx, []string{k.Database}, func(string) bool { return test })
	u.provisionMu.Unlock()
	if perr != nil {
		u.log.Warn("PostgreSQL upstream provisioning failed", "upstream", u.Address(), "database", k.Database, "err", perr)
		return nil, err
	}
	return u.pool.Get(ctx, k)
}

// dial logs in as k's role to k's database and takes the connection over.
func (u *Upstream) dial(ctx context.Context, k upstream.Key) (*serverConn, error) {
	cfg := u.login(k.Role).Copy()
	cfg.Database = k.Database
	cfg.RuntimeParams = map[string]string{}
	if k.Variant == restVariant {
		cfg.RuntimeParams["statement_timeout"] = strconv.Itoa(int(u.opts.SQLTimeout / time.Millisecond))
	}
	cfg.OnNotice, cfg.OnNotification = nil, nil
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	u.record(err)
	if err != nil {
		return nil, err
	}
	h, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, err
	}
	params := make(map[string]string, len(h.ParameterStatuses))
	for k, v := range h.ParameterStatuses {
		params[k] = v
	}
	return &serverConn{Conn: h.Conn, pid: h.PID, secret: h.SecretKey, params: params,
		addr: net.JoinHostPort(h.Config.Host, fmt.Sprint(h.Config.Port))}, nil
}

// unreachable reports whether a dial error means the server could not be
// reached (anything but an answer from it).
func unreachable(err error) bool {
	var pe *pgconn.PgError
	return !errors.As(err, &pe)
}

// healthy reports whether an idle server connection may be handed out
// (upstream.Alive).
func healthy(c *serverConn) bool { return upstream.Alive(c.Conn) }

// cancel sends a CancelRequest for sc's backend to its server.
func (sc *serverConn) cancel() error {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", sc.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := make([]byte, 0, 12+len(sc.secret))
	msg = binary.BigEndian.AppendUint32(msg, uint32(12+len(sc.secret)))
	msg = binary.BigEndian.AppendUint32(msg, cancelRequestCode)
	msg = binary.BigEndian.AppendUint32(msg, sc.pid)
	msg = append(msg, sc.secret...)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	var b [1]byte
	_, _ = c.Read(b[:]) // the server closes once it has read the request
	return nil
}

// Provision creates or updates, idempotently, the six roles with their
// passwords and grants, and each database in databases (isTest tells the
// test ones) with the grants that confine the test roles to test databases.
func (u *Upstream) Provision(ctx context.Context, databases []string, isTest func(string) bool) error {
	if u.admin == nil {
		return nil // RoleURLs mode
	}
	conn, err := pgx.ConnectConfig(ctx, u.adminConfig(u.admin.Database))
	u.record(err)
	if err != nil {
		return fmt.Errorf("PostgreSQL upstream %s: administrator connection: %w", u.Address(), err)
	}
	defer conn.Close(ctx)
	for _, r := range upstream.Roles {
		name := pgx.Identifier{r.Name()}.Sanitize()
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", r.Name()).Scan(&exists); err != nil {
			return err
		}
		verb := "ALTER"
		if !exists {
			verb = "CREATE"
		}
		stmts := []string{
			verb + " ROLE " + name + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD " + quoteLiteral(u.passwords.For(r)),
			"GRANT pg_read_all_data TO " + name,
		}
		switch r.Level() {
		case upstream.Read:
			stmts = append(stmts, "ALTER ROLE "+name+" SET default_transaction_read_only = on")
		default:
			stmts = append(stmts, "GRANT pg_write_all_data TO "+name, "ALTER ROLE "+name+" RESET default_transaction_read_only")
		}
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				return fmt.Errorf("provision role %s: %w", r.Name(), err)
			}
		}
	}
	for _, db := range databases {
		if err := u.provisionDatabase(ctx, conn, db, isTest(db)); err != nil {
			return err
		}
	}
	return nil
}

// CreateDatabase creates db (when missing) and grants it to the roles that
// may reach it: POST /v1/databases on this upstream.
func (u *Upstream) CreateDatabase(ctx context.Context, db string, test bool) error {
	if u.admin == nil {
		return nil // RoleURLs mode: databases are made by whoever made the roles
	}
	conn, err := pgx.ConnectConfig(ctx, u.adminConfig(u.admin.Database))
	if err != nil {
		return fmt.Errorf("PostgreSQL upstream %s: administrator connection: %w", u.Address(), err)
	}
	defer conn.Close(ctx)
	return u.provisionDatabase(ctx, conn, db, test)
}

// DropDatabase drops db (when present), ending its open sessions: DELETE
// /v1/databases on this upstream.
func (u *Upstream) DropDatabase(ctx context.Context, db string) error {
	if u.admin == nil {
		return nil
	}
	conn, err := pgx.ConnectConfig(ctx, u.adminConfig(u.admin.Database))
	if err != nil {
		return fmt.Errorf("PostgreSQL upstream %s: administrator connection: %w", u.Address(), err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
	return err
}

func (u *Upstream) adminConfig(db string) *pgx.ConnConfig {
	cfg, _ := pgx.ParseConfig("")
	cfg.Config = *u.admin.Copy()
	cfg.Database = db
	return cfg
}

// provisionDatabase creates db when it does not exist, takes CONNECT from
// PUBLIC, gives it to the production roles (and to the test roles when db
// is a test database), and lets the owner roles create in its public schema.
func (u *Upstream) provisionDatabase(ctx context.Context, conn *pgx.Conn, db string, test bool) error {
	ident := pgx.Identifier{db}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42P04" { // created meanwhile
				return fmt.Errorf("create database %s: %w", db, err)
			}
		}
		u.log.Info("created upstream database", "protocol", "postgres", "database", db)
	}
	var roles []string
	for _, r := range upstream.Roles {
		if !r.IsTest() || test {
			roles = append(roles, pgx.Identifier{r.Name()}.Sanitize())
		}
	}
	stmts := []string{"REVOKE CONNECT, TEMPORARY ON DATABASE " + ident + " FROM PUBLIC",
		"GRANT CONNECT, TEMPORARY ON DATABASE " + ident + " TO " + strings.Join(roles, ", ")}
	if !test {
		var testRoles []string
		for _, r := range upstream.Roles {
			if r.IsTest() {
				testRoles = append(testRoles, pgx.Identifier{r.Name()}.Sanitize())
			}
		}
		stmts = append(stmts, "REVOKE CONNECT, TEMPORARY ON DATABASE "+ident+" FROM "+strings.Join(testRoles, ", "))
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("grant database %s: %w", db, err)
		}
	}
	dbConn, err := pgx.ConnectConfig(ctx, u.adminConfig(db))
	if err != nil {
		return fmt.Errorf("connect to database %s: %w", db, err)
	}
	defer dbConn.Close(ctx)
	owners := pgx.Identifier{upstream.Owner.Name()}.Sanitize()
	if test {
		owners += ", " + pgx.Identifier{(upstream.Test | upstream.Owner).Name()}.Sanitize()
	}
	if _, err := dbConn.Exec(ctx, "GRANT USAGE, CREATE ON SCHEMA public TO "+owners); err != nil {
		return fmt.Errorf("grant schema public of %s: %w", db, err)
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// on: only quotes are doubled).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
