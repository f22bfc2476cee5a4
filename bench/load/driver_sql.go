package load

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// dialTimeout bounds every connection attempt.
const dialTimeout = 10 * time.Second

// pgDriver drives PostgreSQL with pgx (its default extended protocol with
// a statement cache, as an application would).
type pgDriver struct {
	cfg *pgx.ConnConfig // compared server: its own URL; nil for the gateway
	url func(token string) string
	tls *tls.Config // the gateway's, with --tls
}

func newPGDriver(c *Config, e Endpoint) (driver, error) {
	d := &pgDriver{tls: c.tlsFor(e.Addr)}
	if e.Gateway {
		d.url = func(tok string) string {
			return "postgres://default:" + url.QueryEscape(tok) + "@" + e.Addr + "/" + c.Database + "?sslmode=disable"
		}
		return d, nil
	}
	cfg, err := pgx.ParseConfig(e.URL)
	if err != nil {
		return nil, fmt.Errorf("compare %s: %v", e.Name, err)
	}
	d.cfg = cfg
	return d, nil
}

func (d *pgDriver) config(token string) (*pgx.ConnConfig, error) {
	if d.cfg != nil {
		return d.cfg.Copy(), nil
	}
	cfg, err := pgx.ParseConfig(d.url(token))
	if err == nil && d.tls != nil {
		cfg.TLSConfig, cfg.Fallbacks = d.tls, nil
	}
	return cfg, err
}

type pgSession struct{ c *pgx.Conn }

func (d *pgDriver) open(ctx context.Context, token string) (session, error) {
	cfg, err := d.config(token)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = dialTimeout
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &pgSession{c: c}, nil
}

func (d *pgDriver) connectOnce(ctx context.Context, token string) error {
	return connectOnce(ctx, d, token)
}

func (d *pgDriver) prepare(ctx context.Context, token string, keys int) (string, error) {
	s, err := d.open(ctx, token)
	if err != nil {
		return "", err
	}
	defer s.close()
	c := s.(*pgSession).c
	if _, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (k int PRIMARY KEY, v text NOT NULL)"); err != nil {
		return "", err
	}
	if _, err := c.Exec(ctx, "INSERT INTO "+table+" (k, v) SELECT g, 'value-' || g FROM generate_series(1, $1::int) g ON CONFLICT (k) DO NOTHING", keys); err != nil {
		return "", err
	}
	var v string
	err = c.QueryRow(ctx, "SHOW server_version").Scan(&v)
	return "PostgreSQL " + v, err
}

func (s *pgSession) ping(ctx context.Context) error {
	_, err := s.c.Exec(ctx, "SELECT 1")
	return err
}

func (s *pgSession) read(ctx context.Context, key int) error {
	var v string
	err := s.c.QueryRow(ctx, "SELECT v FROM "+table+" WHERE k = $1", key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %s k=%d", errMissing, table, key)
	}
	return err
}

func (s *pgSession) write(ctx context.Context, key int, val string) error {
	_, err := s.c.Exec(ctx, "UPDATE "+table+" SET v = $2 WHERE k = $1", key, val)
	return err
}

func (s *pgSession) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.c.Close(ctx)
}

// mysqlDriver drives MySQL and MariaDB with go-sql-driver, one connection
// per session, parameters interpolated client-side (one round trip per
// statement, as most applications configure it).
type mysqlDriver struct {
	base *mysql.Config
	gw   bool
}

// quietMySQL keeps go-sql-driver from logging to stderr (a broken pipe
// after the server ended a session): the run counts errors itself.
var quietMySQL sync.Once

type nopLogger struct{}

// Print drops the message.
func (nopLogger) Print(...any) {}

func newMySQLDriver(c *Config, e Endpoint) (driver, error) {
	quietMySQL.Do(func() { _ = mysql.SetLogger(nopLogger{}) })
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", e.Addr, c.Database
	if !e.Gateway {
		u, err := url.Parse(e.URL)
		if err != nil {
			return nil, fmt.Errorf("compare %s: %v", e.Name, err)
		}
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
		if db := strings.TrimPrefix(u.Path, "/"); db != "" {
			cfg.DBName = db
		}
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = dialTimeout, 30*time.Second, 30*time.Second
	cfg.InterpolateParams = true
	if e.Gateway {
		cfg.TLS = c.tlsFor(e.Addr)
	}
	return &mysqlDriver{base: cfg, gw: e.Gateway}, nil
}

type mysqlSession struct {
	db *sql.DB
	c  *sql.Conn
}

func (d *mysqlDriver) open(ctx context.Context, token string) (session, error) {
	cfg := d.base.Clone()
	if d.gw {
		cfg.User, cfg.Passwd = "default", token
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	c, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &mysqlSession{db: db, c: c}, nil
}

func (d *mysqlDriver) connectOnce(ctx context.Context, token string) error {
	return connectOnce(ctx, d, token)
}

func (d *mysqlDriver) prepare(ctx context.Context, token string, keys int) (string, error) {
	s, err := d.open(ctx, token)
	if err != nil {
		return "", err
	}
	defer s.close()
	c := s.(*mysqlSession).c
	if _, err := c.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (k INT PRIMARY KEY, v VARCHAR(64) NOT NULL)"); err != nil {
		return "", err
	}
	for lo := 1; lo <= keys; lo += 500 {
		var b strings.Builder
		b.WriteString("INSERT IGNORE INTO " + table + " (k, v) VALUES ")
		for k := lo; k < lo+500 && k <= keys; k++ {
			if k > lo {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,'value-%d')", k, k)
		}
		if _, err := c.ExecContext(ctx, b.String()); err != nil {
			return "", err
		}
	}
	var v string
	err = c.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v)
	return "MySQL/MariaDB " + v, err
}

func (s *mysqlSession) ping(ctx context.Context) error {
	var one int
	return s.c.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

func (s *mysqlSession) read(ctx context.Context, key int) error {
	var v string
	err := s.c.QueryRowContext(ctx, "SELECT v FROM "+table+" WHERE k = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s k=%d", errMissing, table, key)
	}
	return err
}

func (s *mysqlSession) write(ctx context.Context, key int, val string) error {
	_, err := s.c.ExecContext(ctx, "UPDATE "+table+" SET v = ? WHERE k = ?", val, key)
	return err
}

func (s *mysqlSession) close() {
	_ = s.c.Close()
	_ = s.db.Close()
}
