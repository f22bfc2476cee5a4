package issuer

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/internal/httpapi"
)

// Database registry error codes.
const (
	CodeInvalidDatabase  = "INVALID_DATABASE_NAME"
	CodeDatabaseExists   = "DATABASE_EXISTS"
	CodeDatabaseNotFound = "DATABASE_NOT_FOUND"
)

// MaxDatabaseNameLen bounds a database name (PostgreSQL's identifier limit).
const MaxDatabaseNameLen = 63

// checkDatabaseName accepts 1 to 63 characters of letters, digits, "_" and
// "-", starting with a letter or "_".
func checkDatabaseName(name string) *APIError {
	ok := name != "" && len(name) <= MaxDatabaseNameLen
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		ok = letter || i > 0 && (c >= '0' && c <= '9' || c == '-')
	}
	if !ok {
		return badRequest(CodeInvalidDatabase, "database name %q is not valid: use 1 to %d letters, digits, '_' or '-', starting with a letter or '_' (e.g. \"analytics_test\")", name, MaxDatabaseNameLen)
	}
	return nil
}

// DatabaseInfo is a database as GET /v1/databases shows it.
type DatabaseInfo struct {
	Name      string    `json:"name"`
	Test      bool      `json:"test"`
	CreatedAt time.Time `json:"created_at"`
}

func (d *Database) info() DatabaseInfo {
	return DatabaseInfo{Name: d.Name, Test: d.Test, CreatedAt: time.Unix(d.Created, 0).UTC()}
}

// ListDatabases returns the registry, by name. The router has checked
// database:read; a test token sees only test databases.
func (s *Service) ListDatabases(c *core.Claims) []DatabaseInfo {
	out := []DatabaseInfo{}
	for _, d := range s.store.pol.databases() {
		if c.Flags&core.FlagTestOnly == 0 || d.Test {
			out = append(out, d.info())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Upstreams is what the registry tells the upstream databases behind the
// gateway. Both calls are idempotent: creating a database that exists there,
// or dropping one that does not, succeeds.
type Upstreams interface {
	// CreateDatabase creates name on every upstream and grants it to the
	// roles that may reach it (test databases: the test roles too).
	CreateDatabase(ctx context.Context, name string, test bool) error
	// DropDatabase drops name on every upstream.
	DropDatabase(ctx context.Context, name string) error
}

// CodeUpstreamFailed is the error code of a registry change an upstream
// database could not apply (502): nothing was registered or deleted.
const CodeUpstreamFailed = "UPSTREAM_FAILED"

// upstreamFailed words an upstream's refusal to apply a registry change.
func upstreamFailed(what string, err error) *APIError {
	return &APIError{Status: http.StatusBadGateway, Code: CodeUpstreamFailed,
		Message: what + " failed on an upstream database, so the registry is unchanged: " + err.Error()}
}

// CreateDatabaseRequest is the body of POST /v1/databases.
type CreateDatabaseRequest struct {
	Name string `json:"name"`
	Test bool   `json:"test"`
}

// CreateDatabase registers a database (database:create, checked by the
// router). A test token may create test databases only.
func (s *Service) CreateDatabase(c *core.Claims, req *CreateDatabaseRequest) (*Database, error) {
	if e := checkDatabaseName(req.Name); e != nil {
		return nil, e
	}
	if c.Flags&core.FlagTestOnly != 0 && !req.Test {
		return nil, forbidden("test tokens can create test databases only: send \"test\": true")
	}
	if _, exists := s.store.pol.db(req.Name); !exists && s.opts.Upstreams != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.opts.Upstreams.CreateDatabase(ctx, req.Name, req.Test)
		cancel()
		if err != nil {
			return nil, upstreamFailed("creating database "+req.Name, err)
		}
	}
	res, err := s.store.Submit(&Command{Op: OpCreateDatabase, At: s.opts.Now().Unix(), Database: req.Name, Test: req.Test})
	if errors.Is(err, ErrDatabaseExists) {
		return nil, &APIError{Status: http.StatusConflict, Code: CodeDatabaseExists,
			Message: "a database named " + req.Name + " already exists: list them with GET /v1/databases"}
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("database created", "database", req.Name, "test", req.Test, "account", c.Account, "seq", res.Seq)
	return res.DB, nil
}

// DeleteDatabase removes a database from the registry (database:delete,
// checked by the router). A test token may delete test databases only.
func (s *Service) DeleteDatabase(c *core.Claims, name string) (*Database, error) {
	if e := checkDatabaseName(name); e != nil {
		return nil, e
	}
	notFound := &APIError{Status: http.StatusNotFound, Code: CodeDatabaseNotFound,
		Message: "no database named " + name + ": list them with GET /v1/databases"}
	d, ok := s.store.pol.db(name)
	if !ok {
		return nil, notFound
	}
	if c.Flags&core.FlagTestOnly != 0 && !d.Test {
		return nil, forbidden("test tokens can delete test databases only")
	}
	if s.opts.Upstreams != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := s.opts.Upstreams.DropDatabase(ctx, name)
		cancel()
		if err != nil {
			return nil, upstreamFailed("dropping database "+name, err)
		}
	}
	res, err := s.store.Submit(&Command{Op: OpDeleteDatabase, At: s.opts.Now().Unix(), Database: name})
	if errors.Is(err, ErrNoDatabase) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("database deleted", "database", name, "account", c.Account, "seq", res.Seq)
	return res.DB, nil
}

// DatabaseRoutes returns GET/POST /v1/databases and DELETE /v1/databases/:name.
func (s *Service) DatabaseRoutes() []httpapi.Route {
	return []httpapi.Route{
		{Method: "GET", Path: "/v1/databases", Authed: s.handleListDatabases},
		{Method: "POST", Path: "/v1/databases", Authed: s.handleCreateDatabase},
		{Method: "DELETE", Path: "/v1/databases/", Authed: s.handleDeleteDatabase},
	}
}

func (s *Service) handleListDatabases(ctx *fasthttp.RequestCtx, c *core.Claims) {
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"databases": s.ListDatabases(c)})
}

func (s *Service) handleCreateDatabase(ctx *fasthttp.RequestCtx, c *core.Claims) {
	var req CreateDatabaseRequest
	if !decodeBody(ctx, &req, true) {
		return
	}
	d, err := s.CreateDatabase(c, &req)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	httpapi.WriteJSON(ctx, http.StatusCreated, d.info())
}

func (s *Service) handleDeleteDatabase(ctx *fasthttp.RequestCtx, c *core.Claims) {
	name := strings.TrimPrefix(string(ctx.Path()), "/v1/databases/")
	if !decodeBody(ctx, &struct{}{}, false) {
		return
	}
	d, err := s.DeleteDatabase(c, name)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	httpapi.WriteJSON(ctx, http.StatusOK, map[string]any{"deleted": d.Name})
}
