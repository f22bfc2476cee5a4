package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// apiError is the server's error body {"error":{"code","message"}}.
type apiError struct {
	Status  int
	Code    string
	Message string
	// Scope is the scope a 403 says it needs (the scope attribute of its
	// WWW-Authenticate challenge, RFC 6750 §3), "" when it names none.
	Scope string
}

// Error returns the server's code and message.
func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// client talks to one HeliosDB API.
type client struct {
	base string
	http *http.Client
}

// baseURL resolves the API URL: --api-url, then HELIOS_API_URL, then the
// URL saved at login, then the default.
func (a *app) baseURL(saved string) string {
	for _, u := range []string{a.apiURL, os.Getenv("HELIOS_API_URL"), saved} {
		if u != "" {
			return strings.TrimRight(u, "/")
		}
	}
	return defaultAPIURL
}

// client returns an API client for the resolved URL, trusting --ca-cert /
// HELIOS_CA_CERT in addition to the system roots.
func (a *app) client(saved string) (*client, error) {
	base := a.baseURL(saved)
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError("API URL " + base + " is not an http:// or https:// URL")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	ca := a.caCert
	if ca == "" {
		ca = os.Getenv("HELIOS_CA_CERT")
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", ca)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &client{base: base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

// do sends a request with an optional bearer token and JSON body and
// returns the raw response body of a 2xx answer; any other status is an
// *apiError with the server's code and message.
func (c *client) do(method, path, bearer string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("User-Agent", "helios-cli")
	resp, err := c.http.Do(req)
	if err != nil {
		if h := tlsHint(err); h != "" {
			return nil, &hinted{err: fmt.Errorf("TLS to the HeliosDB API at %s failed: %w", c.base, unwrapURLError(err)), hint: h}
		}
		return nil, fmt.Errorf("cannot reach the HeliosDB API at %s (is heliosd running? set --api-url or HELIOS_API_URL): %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read response from %s: %w", c.base, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return out, nil
	}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	ae := &apiError{Status: resp.StatusCode, Scope: challengeScope(resp.Header.Get("WWW-Authenticate"))}
	if json.Unmarshal(out, &eb) == nil && eb.Error.Code != "" {
		ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
	} else {
		ae.Code = fmt.Sprintf("HTTP_%d", resp.StatusCode)
		ae.Message = strings.TrimSpace(string(out))
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
	}
	return nil, ae
}

// challengeScope returns the scope attribute of a Bearer challenge
// (`Bearer error="insufficient_scope", scope="*"` → "*"), or "".
func challengeScope(h string) string {
	_, rest, ok := strings.Cut(h, `scope="`)
	if !ok {
		return ""
	}
	v, _, ok := strings.Cut(rest, `"`)
	if !ok {
		return ""
	}
	return v
}

// unwrapURLError drops net/http's "Post \"url\":" prefix (the URL is
// already in the message).
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// tlsHint is what to do about a failed verification of the server's
// certificate ("" when err is not one): name --ca-cert, the flag that fixes
// it for heliosd's self-signed default.
func tlsHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return "trust heliosd's CA certificate with --ca-cert FILE or HELIOS_CA_CERT=FILE " +
			"(the self-signed default is <data-dir>/tls-cert.pem; heliosd prints its path when it starts)."
	case errors.As(err, &host):
		return "the certificate does not name this host: use a host name it holds in --api-url (localhost or 127.0.0.1 for the self-signed default), " +
			"or give heliosd a certificate for it with --tls-cert/--tls-key."
	case errors.As(err, &invalid):
		return "the server's certificate is not valid (" + invalid.Error() + "); check it, and --ca-cert FILE for the CA to trust."
	}
	return ""
}
