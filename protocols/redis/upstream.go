package redis

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/internal/upstream"
)

// UpstreamOptions configure proxy mode: the real Redis server behind the
// gateway.
type UpstreamOptions struct {
	// AdminURL is a connection of a user that may run ACL SETUSER
	// (redis://default:pw@127.0.0.1:6380, rediss:// for TLS): heliosd
	// provisions its ACL users with it. Never logged.
	AdminURL string
	// PasswordsFile keeps the users' random passwords (0600; with AdminURL).
	PasswordsFile string
	// RoleURLs, instead of AdminURL, log in as users someone else
	// provisioned (user name → redis://helios_read:pw@host:port): gateway
	// nodes receive them from the issuer (Upstream.RoleURLs). Nothing is
	// provisioned then.
	RoleURLs map[string]string
	// PoolSize bounds the server connections of one user (default 20);
	// PoolWait is how long a client waits for one when all are in use
	// (default 5s), then it gets an error.
	PoolSize int
	PoolWait time.Duration
	// Logger receives provisioning and connection messages (never a
	// password).
	Logger *slog.Logger
}

// endpoint is one parsed redis:// or rediss:// URL.
type endpoint struct {
	addr     string // host:port
	host     string
	user     string // "" for AUTH <password> alone
	password string
	tls      bool
}

// parseURL parses redis://[user[:password]@]host[:port][/db] and rediss://
// (TLS). The database number is ignored: a session starts on 0 and moves
// with SELECT, checked by the gateway. Errors never quote the URL.
func parseURL(s string) (endpoint, error) {
	u, err := url.Parse(s)
	if err != nil {
		return endpoint{}, errors.New("cannot parse the URL (redis://user:password@host:port)")
	}
	var e endpoint
	switch u.Scheme {
	case "redis":
	case "rediss":
		e.tls = true
	default:
		return endpoint{}, errors.New("the URL must start with redis:// or rediss://")
	}
	e.host = u.Hostname()
	if e.host == "" {
		return endpoint{}, errors.New("the URL names no host")
	}
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	e.addr = net.JoinHostPort(e.host, port)
	if u.User != nil {
		e.user = u.User.Username()
		e.password, _ = u.User.Password()
		if _, set := u.User.Password(); !set { // redis://:pw@ or redis://pw@
			e.user, e.password = "", e.user
		}
	}
	return e, nil
}

// Upstream is the Redis server behind the gateway: its ACL users (one per
// upstream.Role, provisioned with the administrator connection), the pool
// of server connections logged in as them, and the server's own command
// table merged with the gateway's classifier.
type Upstream struct {
	opts      UpstreamOptions
	admin     *endpoint // nil: RoleURLs mode
	passwords upstream.Passwords
	// logins is how each user logs in, replaced whole by SetRoleURLs.
	logins atomic.Pointer[map[upstream.Role]endpoint]
	// plain: every user logs in without TLS, so that a plaintext
	// client's session and its server connection can share its event
	// loop (loopproxy.go).
	plain atomic.Bool
	pool  *upstream.Pool[*serverConn]
	log   *slog.Logger
	// provisionMu runs one provisioning at a time.
	provisionMu sync.Mutex
	status      upstream.Status
	// table is the classification table merged with the server's COMMAND
	// (nil until it has been read).
	table atomic.Pointer[map[string]command]
}

// Health is what /healthz says about the upstream: whether the last
// attempt to reach it succeeded, and its pools.
type Health struct {
	upstream.Health
	// Commands is how many commands the server's own table has (0 until
	// it has been read).
	Commands int `json:"commands,omitempty"`
}

// NewUpstream checks the administrator URL and loads (or makes) the users'
// passwords, or takes the role URLs; it connects to nothing (Provision
// does).
func NewUpstream(o UpstreamOptions) (*Upstream, error) {
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
	e, err := parseURL(o.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("--redis-upstream: %w", err)
	}
	pw, err := upstream.LoadPasswords(o.PasswordsFile)
	if err != nil {
		return nil, err
	}
	u.admin, u.passwords = &e, pw
	logins := make(map[upstream.Role]endpoint, len(upstream.Roles))
	for _, r := range upstream.Roles {
		l := e
		l.user, l.password = r.Name(), pw.For(r)
		logins[r] = l
	}
	u.setLogins(logins)
	return u, nil
}

// SetRoleURLs replaces how the users log in (user name → URL with its
// user and password): a gateway node following the issuer. Every user
// must be given; connections already open are not touched.
func (u *Upstream) SetRoleURLs(urls map[string]string) error {
	logins := make(map[upstream.Role]endpoint, len(upstream.Roles))
	for _, r := range upstream.Roles {
		s, ok := urls[r.Name()]
		if !ok {
			return fmt.Errorf("Redis upstream: no URL for user %s", r.Name())
		}
		e, err := parseURL(s)
		if err != nil {
			return fmt.Errorf("Redis upstream, user %s: %w", r.Name(), err)
		}
		logins[r] = e
	}
	u.setLogins(logins)
	return nil
}

// setLogins replaces how the users log in, and whether all of them do so
// without TLS.
func (u *Upstream) setLogins(logins map[upstream.Role]endpoint) {
	plain := true
	for _, e := range logins {
		plain = plain && !e.tls
	}
	u.logins.Store(&logins)
	u.plain.Store(plain)
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

// RoleURLs returns how each user logs in, as URLs a gateway node can use:
// the issuer serves them to nodes over the cluster channel. Nil in
// RoleURLs mode.
func (u *Upstream) RoleURLs() map[string]string {
	if u.admin == nil {
		return nil
	}
	m := make(map[string]string, len(upstream.Roles))
	for r, e := range *u.logins.Load() {
		scheme := "redis"
		if e.tls {
			scheme = "rediss"
		}
		m[r.Name()] = (&url.URL{Scheme: scheme, User: url.UserPassword(e.user, e.password), Host: e.addr}).String()
	}
	return m
}

// login is how role r logs in.
func (u *Upstream) login(r upstream.Role) endpoint { return (*u.logins.Load())[r] }

// Address is the server's host:port, for messages.
func (u *Upstream) Address() string {
	if u.admin != nil {
		return u.admin.addr
	}
	return u.login(upstream.Read).addr
}

// Close closes the pool's idle connections.
func (u *Upstream) Close() { u.pool.Close() }

// Health reports the upstream's last known state (no I/O). Idle counts the
// connections parked on the event loops too.
func (u *Upstream) Health() Health {
	stats := u.pool.Stats()
	h := Health{Health: u.status.Health(u.Address(), stats)}
	for k := range stats {
		h.Idle += netio.Parked(parkKey{u, k})
	}
	if t := u.table.Load(); t != nil {
		h.Commands = len(*t)
	}
	return h
}

// record keeps the outcome of an attempt to reach the server: an error
// reply (a refused login) means it was reached.
func (u *Upstream) record(err error) {
	if err == nil {
		u.status.Record(u.Address(), true, "")
		return
	}
	var se serverError
	u.status.Record(u.Address(), errors.As(err, &se), err.Error())
}

// unreachable reports whether a dial error means the server could not be
// reached (anything but a reply from it).
func unreachable(err error) bool {
	var se serverError
	return !errors.As(err, &se)
}

// serverConn is one authenticated server connection.
type serverConn struct {
	net.Conn
	login endpoint // who it is logged in as (for AUTH after RESET)
}

// connect opens a connection to e and logs in as e's user.
func connect(ctx context.Context, e endpoint) (net.Conn, *bufio.Reader, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return nil, nil, err
	}
	if e.tls {
		tc := tls.Client(nc, &tls.Config{ServerName: e.host, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, nil, err
		}
		nc = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	r := bufio.NewReaderSize(nc, 64<<10)
	if e.password != "" || e.user != "" {
		var cmd []byte
		if e.user != "" {
			cmd = appendCommand(nil, "AUTH", e.user, e.password)
		} else {
			cmd = appendCommand(nil, "AUTH", e.password)
		}
		if _, err := nc.Write(cmd); err != nil {
			nc.Close()
			return nil, nil, err
		}
		if err := replyError(readReply(r)); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	return nc, r, nil
}

// dial opens a server connection for k's role. The first one also reads
// the server's command table, when it is not known yet.
func (u *Upstream) dial(ctx context.Context, k upstream.Key) (*serverConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	e := u.login(k.Role)
	nc, r, err := connect(ctx, e)
	u.record(err)
	if err != nil {
		return nil, err
	}
	if u.table.Load() == nil {
		if err := u.learn(nc, r); err != nil {
			u.log.Warn("Redis upstream: reading the server's command table", "upstream", e.addr, "err", err)
		}
	}
	if r.Buffered() > 0 {
		nc.Close()
		return nil, errors.New("redis upstream: the server sent more than asked for")
	}
	_ = nc.SetDeadline(time.Time{})
	return &serverConn{Conn: nc, login: e}, nil
}

// get takes a server connection for k. When the login is refused
// (WRONGPASS: the users are not there yet, or the server restarted and
// forgot them, as Redis does with ACL users that are in no ACL file), it
// provisions them with the administrator connection and tries once more.
func (u *Upstream) get(ctx context.Context, k upstream.Key) (*serverConn, error) {
	sc, err := u.pool.Get(ctx, k)
	var se serverError
	if err == nil || !errors.As(err, &se) || u.admin == nil {
		return sc, err
	}
	if c := se.code(); c != "WRONGPASS" && c != "NOPERM" && c != "ERR" {
		return nil, err
	}
	u.provisionMu.Lock()
	perr := u.Provision(ctx)
	u.provisionMu.Unlock()
	if perr != nil {
		u.log.Warn("Redis upstream provisioning failed", "upstream", u.Address(), "err", perr)
		return nil, err
	}
	return u.pool.Get(ctx, k)
}

// healthy reports whether an idle server connection is still open and
// silent (a server that restarted has closed it).
func healthy(c *serverConn) bool { return upstream.Alive(c.Conn) }

// aclRules are the ACL SETUSER rules of a role's user (after "reset on
// >password"): Redis's own command categories, so that the server refuses
// by its own judgement what the token's scopes do not allow (wall 2), plus
// the few commands the gateway allows at that level that Redis files
// under @dangerous (KEYS, INFO, SORT…), so that the two walls agree on
// what works. Every user may use every key (~*) and channel (&*). Redis
// ACLs cannot confine a user to logical databases: the test users have
// their level's rules, and the gateway's SELECT check is the only wall
// that keeps test tokens on test databases.
func aclRules(r upstream.Role) []string {
	rules := []string{"~*", "&*", "+@read", "+@connection", "+@transaction", "+@pubsub"}
	switch r.Level() {
	case upstream.Read:
		return append(rules, "-@write", "-@admin", "-@dangerous", "-publish", "-spublish",
			"+keys", "+sort_ro", "+info", "+time", "+eval_ro", "+evalsha_ro", "+fcall_ro")
	case upstream.Write:
		return append(rules, "+@write", "-@admin", "-@dangerous",
			"+keys", "+sort_ro", "+sort", "+info", "+time", "+restore",
			"+eval_ro", "+evalsha_ro", "+fcall_ro", "+eval", "+evalsha", "+fcall")
	}
	// Owner: also scripts and functions (schema:write on Redis), FLUSHDB
	// and FLUSHALL (database:delete), SWAPDB; never @admin, and none of
	// what the gateway refuses every token (SCRIPT FLUSH, FUNCTION FLUSH
	// and RESTORE), nor MIGRATE (to another server).
	return append(rules, "+@write", "+@scripting", "+@dangerous", "-@admin",
		"-script|flush", "-function|flush", "-function|restore", "-migrate", "-restore-asking", "+time")
}

// Provision creates or updates, idempotently, the six ACL users with their
// passwords and rules, and reads the server's command table.
func (u *Upstream) Provision(ctx context.Context) error {
	if u.admin == nil {
		return nil // RoleURLs mode
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	nc, r, err := connect(ctx, *u.admin)
	u.record(err)
	if err != nil {
		return fmt.Errorf("Redis upstream %s: administrator connection: %w", u.admin.addr, err)
	}
	defer nc.Close()
	for _, role := range upstream.Roles {
		args := append([]string{"ACL", "SETUSER", role.Name(), "reset", "on", ">" + u.passwords.For(role)}, aclRules(role)...)
		if _, err := nc.Write(appendCommand(nil, args...)); err != nil {
			return err
		}
		if err := replyError(readReply(r)); err != nil {
			return fmt.Errorf("Redis upstream %s: ACL SETUSER %s: %w", u.admin.addr, role.Name(), err)
		}
	}
	if err := u.learn(nc, r); err != nil {
		return fmt.Errorf("Redis upstream %s: COMMAND: %w", u.admin.addr, err)
	}
	return nil
}

// learn reads the server's command table (COMMAND) and merges it with the
// gateway's (mergeCommands).
func (u *Upstream) learn(nc net.Conn, r *bufio.Reader) error {
	if _, err := nc.Write(appendCommand(nil, "COMMAND")); err != nil {
		return err
	}
	v, err := readReply(r)
	if err := replyError(v, err); err != nil {
		return err
	}
	list, ok := v.([]any)
	if !ok {
		return errors.New("COMMAND did not answer an array")
	}
	server := make(map[string]serverCommand, len(list))
	for _, e := range list {
		if c, ok := parseCommandInfo(e); ok {
			server[c.name] = c
		}
	}
	if len(server) == 0 {
		return errors.New("COMMAND listed no command")
	}
	m := mergeCommands(server)
	u.table.Store(&m)
	return nil
}

// serverCommand is what COMMAND says of one command: its flags
// (readonly, write, …), ACL categories (@read, @write, @admin, …) and
// subcommands.
type serverCommand struct {
	name       string
	flags      map[string]bool
	categories map[string]bool
	subs       []serverCommand
}

// parseCommandInfo reads one entry of COMMAND's reply: name, arity, flags,
// first key, last key, step, ACL categories (Redis 6+), tips, key
// specifications, subcommands (Redis 7+).
func parseCommandInfo(v any) (serverCommand, bool) {
	e, ok := v.([]any)
	if !ok || len(e) < 3 {
		return serverCommand{}, false
	}
	name, ok := e[0].(string)
	if !ok || name == "" {
		return serverCommand{}, false
	}
	c := serverCommand{name: strings.ToLower(name), flags: map[string]bool{}, categories: map[string]bool{}}
	if fl, ok := e[2].([]any); ok {
		for _, f := range fl {
			if s, ok := f.(string); ok {
				c.flags[strings.ToLower(s)] = true
			}
		}
	}
	if len(e) > 6 {
		if cats, ok := e[6].([]any); ok {
			for _, f := range cats {
				if s, ok := f.(string); ok {
					c.categories[strings.ToLower(s)] = true
				}
			}
		}
	}
	if len(e) > 9 {
		if subs, ok := e[9].([]any); ok {
			for _, s := range subs {
				if sc, ok := parseCommandInfo(s); ok {
					c.subs = append(c.subs, sc)
				}
			}
		}
	}
	return c, true
}
