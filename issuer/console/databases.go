package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer"
)

// databasesPage is the data of Databases.
type databasesPage struct {
	Databases []issuer.DatabaseInfo
	Name      string
	Test      bool
	Error     string // beside the name field
	CanCreate bool
	CanDelete bool
}

func (c *Console) databasesPage(ctx *fasthttp.RequestCtx, s *session) {
	c.renderDatabases(ctx, s, http.StatusOK, &databasesPage{})
}

func (c *Console) renderDatabases(ctx *fasthttp.RequestCtx, s *session, status int, p *databasesPage) {
	p.Databases = c.svc.ListDatabases(&s.claims)
	p.CanCreate = s.claims.Scopes.Has(core.ScopeDatabaseCreate)
	p.CanDelete = s.claims.Scopes.Has(core.ScopeDatabaseDelete)
	c.render(ctx, status, "databases.html", s.view("Databases", "databases", p))
}

// createDatabase registers a database (database:create, which a console
// session holds; checked here as the REST router checks it).
func (c *Console) createDatabase(ctx *fasthttp.RequestCtx, s *session) {
	args := ctx.PostArgs()
	p := &databasesPage{Name: strings.TrimSpace(string(args.Peek("name"))), Test: string(args.Peek("test")) == "on"}
	if !s.claims.Scopes.Has(core.ScopeDatabaseCreate) {
		c.refuse(ctx, http.StatusForbidden, "Creating databases needs the database:create scope.")
		return
	}
	if p.Name == "" {
		p.Error = "Give the database a name, such as analytics or analytics_test."
		c.renderDatabases(ctx, s, http.StatusBadRequest, p)
		return
	}
	d, err := c.svc.CreateDatabase(&s.claims, &issuer.CreateDatabaseRequest{Name: p.Name, Test: p.Test})
	if err != nil {
		p.Error = c.say(ctx, err, "")
		var ae *issuer.APIError
		if errors.As(err, &ae) && ae.Code == issuer.CodeDatabaseExists {
			p.Error = "A database named " + p.Name + " already exists."
		}
		c.renderDatabases(ctx, s, errStatus(ctx), p)
		return
	}
	kind := "Database"
	if d.Test {
		kind = "Test database"
	}
	s.setFlash(kind + " " + d.Name + " is created.")
	redirect(ctx, "/databases")
}

// deleteDatabase removes a database (database:delete), once confirmed.
func (c *Console) deleteDatabase(ctx *fasthttp.RequestCtx, s *session) {
	name := string(ctx.PostArgs().Peek("name"))
	if !s.claims.Scopes.Has(core.ScopeDatabaseDelete) {
		c.refuse(ctx, http.StatusForbidden, "Deleting databases needs the database:delete scope.")
		return
	}
	if !confirmed(ctx) {
		c.render(ctx, http.StatusOK, "confirm.html", s.view("Delete database", "databases", &confirmPage{
			Heading: "Delete database “" + name + "”?",
			Body:    "Clients can no longer reach it, and in proxy mode it is dropped on the upstream servers with its data. This cannot be undone.",
			Action:  "/databases/delete", Button: "Delete database", Fields: map[string]string{"name": name}, Cancel: "/databases"}))
		return
	}
	if _, err := c.svc.DeleteDatabase(&s.claims, name); err != nil {
		s.setFlash(c.say(ctx, err, ""))
		redirect(ctx, "/databases")
		return
	}
	s.setFlash("Database " + name + " is deleted.")
	redirect(ctx, "/databases")
}

// firstTestDatabase names the first test database of a list ("" if none).
func firstTestDatabase(list []issuer.DatabaseInfo) string {
	for _, d := range list {
		if d.Test {
			return d.Name
		}
	}
	return ""
}
