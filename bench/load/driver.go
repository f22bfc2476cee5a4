package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// table is the table (collection, key prefix) the point and mixed workloads
// prepare and read.
const table = "helios_bench"

// driver speaks one protocol to one endpoint with its real client library.
type driver interface {
	// open connects and authenticates a session: with token on the
	// gateway, with the endpoint URL's own credentials elsewhere.
	open(ctx context.Context, token string) (session, error)
	// connectOnce is the connect workload's request: connect,
	// authenticate, one command, close.
	connectOnce(ctx context.Context, token string) error
	// prepare makes the rows 1..keys the point workload reads (idempotent)
	// and returns the server's version.
	prepare(ctx context.Context, token string, keys int) (version string, err error)
}

// session is one open, authenticated client.
type session interface {
	// ping runs the protocol's cheapest real command.
	ping(ctx context.Context) error
	// read reads row key and fails when it is missing.
	read(ctx context.Context, key int) error
	// write changes row key's value.
	write(ctx context.Context, key int, val string) error
	close()
}

// newDriver returns the driver of endpoint e.
func newDriver(cfg *Config, e Endpoint) (driver, error) {
	switch e.Protocol {
	case PG:
		return newPGDriver(cfg, e)
	case MySQL:
		return newMySQLDriver(cfg, e)
	case Mongo:
		return newMongoDriver(cfg, e)
	case Redis:
		return newRedisDriver(cfg, e)
	case REST:
		return newRESTDriver(cfg, e)
	}
	return nil, fmt.Errorf("no driver for %s", e.Protocol)
}

// connectOnce is the connect request of the drivers whose open
// authenticates: open, ping, close.
func connectOnce(ctx context.Context, d driver, token string) error {
	s, err := d.open(ctx, token)
	if err != nil {
		return err
	}
	defer s.close()
	return s.ping(ctx)
}

// value is the value row key holds after a write.
func value(key, n int) string { return fmt.Sprintf("value-%d-%d", key, n) }

// tokenRE finds HeliosDB tokens, which an error message must never show.
var tokenRE = regexp.MustCompile(`hdb_(live|test|svc)_[A-Za-z0-9_\-]+`)

// connNumRE finds mongo-driver's connection numbers ("[-12]").
var connNumRE = regexp.MustCompile(`\[-?\d+\]`)

// numRE finds the numbers that make otherwise equal messages differ
// (ports, ids, durations).
var numRE = regexp.MustCompile(`:\d{2,5}\b`)

// errorKind is the kind an error is counted as: the server's own code and
// message when the protocol carries one, else what the network said.
func errorKind(err error) string {
	k := errorKindRaw(err)
	k = tokenRE.ReplaceAllString(k, "hdb_…")
	k = numRE.ReplaceAllString(k, ":…")
	k = connNumRE.ReplaceAllString(k, "")
	if len(k) > 200 {
		k = k[:197] + "…"
	}
	return k
}

func errorKindRaw(err error) string {
	var pe *pgconn.PgError
	var me *mysql.MySQLError
	var ce mongo.CommandError
	var re redis.Error
	var he *restError
	var ne net.Error
	msg := err.Error()
	if _, last, ok := strings.Cut(msg, "Last error: "); ok && strings.Contains(msg, "server selection") {
		// mongo-driver found no server: what its monitor last met says why.
		return "mongo server selection: " + strings.TrimRight(strings.TrimSpace(strings.SplitN(last, " }", 2)[0]), ",")
	}
	switch {
	case errors.As(err, &pe):
		return fmt.Sprintf("postgres %s: %s", pe.Code, pe.Message)
	case errors.As(err, &me):
		return fmt.Sprintf("mysql %d: %s", me.Number, me.Message)
	case errors.As(err, &ce) && (ce.Code != 0 || ce.Name != ""):
		return fmt.Sprintf("mongo %d %s: %s", ce.Code, ce.Name, ce.Message)
	case errors.As(err, &he):
		return he.Error()
	case errors.As(err, &re):
		return "redis: " + re.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, errMissing):
		return err.Error()
	}
	if strings.Contains(msg, "EOF") || strings.Contains(msg, "closed") {
		return "connection closed by the server: " + lastClause(msg)
	}
	return lastClause(msg)
}

// lastClause keeps the end of a driver's wrapped message, which says what
// happened (the start names the driver's steps).
func lastClause(msg string) string {
	parts := strings.Split(msg, ": ")
	if len(parts) > 2 {
		parts = parts[len(parts)-2:]
	}
	return strings.Join(parts, ": ")
}

// errMissing is a read that found no row: the data set is not what the run
// prepared.
var errMissing = errors.New("row missing")
