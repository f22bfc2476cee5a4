package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/protocols/rest"
)

// REST: a minimal HTTP/1.1 client posting {"query":"SELECT 1"} to
// /api/v1/sql with the token as Bearer, against the real heliosd (plaintext
// from loopback), for the handshake table beside the raw-TCP ceiling. And
// BenchmarkRESTAuthOverhead: the same fasthttp server with and without
// the Bearer middleware, in one run.
func init() {
	register(Target{Name: "rest-http", Listener: "http-listen", Handshake: restHandshake, Open: restOpen})
}

var restBody = []byte(`{"query":"SELECT 1"}`)

func restRequest(token string, keepAlive bool) []byte {
	conn := "close"
	if keepAlive {
		conn = "keep-alive"
	}
	return []byte("POST /api/v1/sql HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(restBody)) +
		"\r\nConnection: " + conn + "\r\n\r\n" + string(restBody))
}

// readHTTPResponse reads one response and fails unless it is 200.
func readHTTPResponse(r *bufio.Reader) error {
	status, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200")) {
		return fmt.Errorf("rest: %q", bytes.TrimSpace(status))
	}
	length := -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		return errors.New("rest: response without Content-Length")
	}
	_, err = r.Discard(length)
	return err
}

func restHandshake(addr, token string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer closeNow(c)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(restRequest(token, false)); err != nil {
		return err
	}
	return readHTTPResponse(bufio.NewReaderSize(c, 1024))
}

type restClient struct {
	c   net.Conn
	r   *bufio.Reader
	req []byte
}

func (rc *restClient) Do() error {
	if _, err := rc.c.Write(rc.req); err != nil {
		return err
	}
	return readHTTPResponse(rc.r)
}

func (rc *restClient) Close() error { return rc.c.Close() }

func restOpen(addr, token string) (Client, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &restClient{c: c, r: bufio.NewReaderSize(c, 1024), req: restRequest(token, true)}, nil
}

// BenchmarkRESTAuthOverhead serves GET /bench from one fasthttp server
// behind the Bearer middleware (verify, scope, usage-free) and from an
// identical server without it, and measures keep-alive requests per second
// against each in interleaved rounds; it reports the authenticated rate's
// median share of the unauthenticated one (target ≥ 90%). Run with
// -benchtime 1x.
func BenchmarkRESTAuthOverhead(b *testing.B) {
	ring := core.GenerateKeyring(time.Now())
	now := time.Now().Unix()
	tok, _, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 1,
		IssuedAt: now, ExpiresAt: now + 3600, Scopes: core.AllScopes})
	if err != nil {
		b.Fatal(err)
	}
	ok := []byte(`{"ok":true}`)
	auth := rest.NewAuthenticator(ring, core.NewMemoryRevocations(), rest.AuthOptions{})
	protected := auth.Wrap(core.ScopeDatabaseRead, func(ctx *fasthttp.RequestCtx, _ *core.Claims) { ctx.SetBody(ok) })
	plain := func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ok) }
	authAddr, stopA := serveFast(b, protected)
	plainAddr, stopP := serveFast(b, plain)
	defer stopA()
	defer stopP()
	for _, c := range concurrencies {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			const rounds, slice = 7, 300 * time.Millisecond
			var ratios, authRates, plainRates []float64
			for r := 0; r < rounds; r++ {
				p, err := keepAliveRate(plainAddr, "", c, slice)
				if err != nil {
					b.Fatal(err)
				}
				a, err := keepAliveRate(authAddr, string(tok), c, slice)
				if err != nil {
					b.Fatal(err)
				}
				ratios, authRates, plainRates = append(ratios, a/p), append(authRates, a), append(plainRates, p)
			}
			sort.Float64s(ratios)
			sort.Float64s(authRates)
			sort.Float64s(plainRates)
			b.ReportMetric(authRates[rounds/2], "auth-req/s")
			b.ReportMetric(plainRates[rounds/2], "plain-req/s")
			b.ReportMetric(100*ratios[rounds/2], "%plain")
		})
	}
}

func serveFast(b *testing.B, h fasthttp.RequestHandler) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { _ = srv.Shutdown() }
}

// keepAliveRate runs c fasthttp clients with keep-alive for d and returns
// requests per second.
func keepAliveRate(addr, token string, c int, d time.Duration) (float64, error) {
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: c}
	defer hc.CloseIdleConnections()
	return rateFor(c, d, func() error {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://bench/bench")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if err := hc.Do(req, resp); err != nil {
			return err
		}
		if resp.StatusCode() != 200 {
			return fmt.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
		}
		return nil
	})
}
