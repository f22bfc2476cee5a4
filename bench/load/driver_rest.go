package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// restDriver drives the REST API's POST /api/v1/sql (which runs on the
// gateway's PostgreSQL upstream) with fasthttp: one keep-alive connection
// per session, bearer token on every request.
type restDriver struct {
	cfg  *Config
	base string // scheme://host:port
	host string
	tls  bool
}

func newRESTDriver(c *Config, e Endpoint) (driver, error) {
	u, err := url.Parse(e.Addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("REST endpoint %q is not a URL", e.Addr)
	}
	return &restDriver{cfg: c, base: strings.TrimRight(e.Addr, "/"), host: u.Host, tls: u.Scheme == "https"}, nil
}

// restError is a REST request that did not answer 200.
type restError struct {
	Status        int
	Code, Message string
}

// Error says the status and the server's code and message.
func (e *restError) Error() string {
	return fmt.Sprintf("rest %d %s: %s", e.Status, e.Code, e.Message)
}

type restSession struct {
	d     *restDriver
	hc    *fasthttp.HostClient
	token string
	// once closes the connection after the request (connect workload).
	once bool
}

func (d *restDriver) client() *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: d.host, IsTLS: d.tls, TLSConfig: d.cfg.TLS, MaxConns: 1,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, MaxIdemponentCallAttempts: 1,
		Name: "helios-bench"}
}

// open makes a session and checks its token with one request.
func (d *restDriver) open(ctx context.Context, token string) (session, error) {
	s := &restSession{d: d, hc: d.client(), token: token}
	if err := s.ping(ctx); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// connectOnce is one request on a new connection, closed after it.
func (d *restDriver) connectOnce(ctx context.Context, token string) error {
	s := &restSession{d: d, hc: d.client(), token: token, once: true}
	defer s.close()
	return s.ping(ctx)
}

func (d *restDriver) prepare(ctx context.Context, token string, keys int) (string, error) {
	s := &restSession{d: d, hc: d.client(), token: token}
	defer s.close()
	if _, err := s.sql(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (k int PRIMARY KEY, v text NOT NULL)"); err != nil {
		return "", err
	}
	if _, err := s.sql(ctx, "INSERT INTO "+table+" (k, v) SELECT g, 'value-' || g FROM generate_series(1, $1::int) g ON CONFLICT (k) DO NOTHING", keys); err != nil {
		return "", err
	}
	r, err := s.sql(ctx, "SHOW server_version")
	if err != nil || len(r.Rows) != 1 || len(r.Rows[0]) != 1 {
		return "REST → PostgreSQL", err
	}
	return fmt.Sprintf("REST → PostgreSQL %v", r.Rows[0][0]), nil
}

// sqlResult is the part of POST /api/v1/sql's answer the run reads.
type sqlResult struct {
	Rows     [][]any `json:"rows"`
	RowCount int     `json:"row_count"`
	Error    struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// sql runs one statement.
func (s *restSession) sql(ctx context.Context, query string, params ...any) (*sqlResult, error) {
	body := map[string]any{"query": query}
	if len(params) > 0 {
		body["params"] = params
	}
	js, _ := json.Marshal(body)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(s.d.base + "/api/v1/sql")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.SetBody(js)
	if s.once {
		req.SetConnectionClose()
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.hc.DoDeadline(req, resp, deadline); err != nil {
		return nil, err
	}
	var r sqlResult
	if err := json.Unmarshal(resp.Body(), &r); err != nil && resp.StatusCode() == 200 {
		return nil, fmt.Errorf("rest: unreadable answer: %v", err)
	}
	if resp.StatusCode() != 200 {
		e := &restError{Status: resp.StatusCode(), Code: r.Error.Code, Message: r.Error.Message}
		if e.Code == "" {
			e.Message = strings.TrimSpace(string(resp.Body()))
			if len(e.Message) > 120 {
				e.Message = e.Message[:120]
			}
		}
		return nil, e
	}
	return &r, nil
}

func (s *restSession) ping(ctx context.Context) error {
	_, err := s.sql(ctx, "SELECT 1")
	return err
}

func (s *restSession) read(ctx context.Context, key int) error {
	r, err := s.sql(ctx, "SELECT v FROM "+table+" WHERE k = $1", key)
	if err == nil && r.RowCount != 1 {
		return fmt.Errorf("%w: %s k=%d", errMissing, table, key)
	}
	return err
}

func (s *restSession) write(ctx context.Context, key int, val string) error {
	_, err := s.sql(ctx, "UPDATE "+table+" SET v = $2 WHERE k = $1", key, val)
	return err
}

func (s *restSession) close() { s.hc.CloseIdleConnections() }
