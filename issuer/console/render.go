package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/internal/buildinfo"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// view is what every page's template gets: the layout's fields and the
// page's own data in Page.
type view struct {
	Title string
	Nav   string // the current section: "tokens", "connect", "databases"
	Email string // the signed-in account ("" before sign-in)
	CSRF  string
	Flash string
	Page  any
}

// asset is one embedded file with its content hash.
type asset struct {
	body  []byte
	ctype string
	hash  string
}

// assets are the files of assets/ by name, loaded at init.
var assets = func() map[string]asset {
	m := map[string]asset{}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[path.Base(p)] = asset{body: b, ctype: mime.TypeByExtension(path.Ext(p)), hash: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		panic("console: embedded assets: " + err.Error()) // BUG: the build embedded them
	}
	return m
}()

// assetURL is an asset's URL with its content hash, so it can be cached
// for good.
func assetURL(name string) (string, error) {
	a, ok := assets[name]
	if !ok {
		return "", fmt.Errorf("no asset %q", name)
	}
	return "/assets/" + name + "?v=" + a.hash, nil
}

// serveAsset serves GET /assets/<name>.
func serveAsset(ctx *fasthttp.RequestCtx) {
	name := strings.TrimPrefix(string(ctx.Path()), "/assets/")
	a, ok := assets[name]
	if !ok {
		ctx.Error("no such asset", http.StatusNotFound)
		return
	}
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.Header.Set("Cross-Origin-Resource-Policy", "same-origin")
	if string(ctx.QueryArgs().Peek("v")) == a.hash {
		ctx.Response.Header.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		ctx.Response.Header.Set("Cache-Control", "no-cache")
	}
	ctx.SetContentType(a.ctype)
	ctx.SetBody(a.body)
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"asset":   assetURL,
	"version": buildinfo.Version,
	"date":    func(t time.Time) string { return t.UTC().Format("2 Jan 2006") },
	"stamp":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago":     ago,
	"until":   until,
	"join":    strings.Join,
}

// pages are the parsed templates by file name: each page with the layout.
var pages = func() map[string]*template.Template {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	m := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || strings.HasPrefix(base, "_") {
			continue
		}
		files := []string{"templates/layout.html", n}
		partials, _ := fs.Glob(templateFS, "templates/_*.html")
		files = append(files, partials...)
		m[base] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, files...))
	}
	return m
}()

// render writes page name with status. A template error is a bug: it is
// logged and answered 500.
func (c *Console) render(ctx *fasthttp.RequestCtx, status int, name string, v *view) {
	var buf bytes.Buffer
	if err := pages[name].Execute(&buf, v); err != nil {
		c.log.Error("console page failed to render", "page", name, "err", err)
		ctx.Error("the console failed to render this page", http.StatusInternalServerError)
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBody(buf.Bytes())
}

// ago says how long before now t was, in words ("3 minutes ago").
func ago(t time.Time) string {
	d := time.Since(t)
	if d < 0 {
		d = 0
	}
	return span(d) + " ago"
}

// until says how long after now t is ("in 6 days"), or "expired".
func until(t time.Time) string {
	d := time.Until(t)
	if d <= 0 {
		return "expired"
	}
	return "in " + span(d)
}

// span words a duration at the precision a person reads it.
func span(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	default:
		return plural(int((d+12*time.Hour)/(24*time.Hour)), "day") // 6 days 23 hours reads "7 days"
	}
}
