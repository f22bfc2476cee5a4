package load

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
)

// TestGatewayTLS: with GatewayTLS every client speaks TLS to the gateway,
// trusting its CA: no request fails; trusting only the system's roots,
// every one fails on the certificate — so TLS is really spoken.
func TestGatewayTLS(t *testing.T) {
	d := gateway(t)
	pem, err := os.ReadFile(d.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in", d.CACert)
	}
	cfg := config(t, d, Point, AllProtocols...)
	cfg.GatewayTLS, cfg.TLS = true, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cfg.Target[REST] = "https://" + d.HTTP
	res := run(t, cfg)
	for _, c := range res.Cells {
		checkSane(t, c.String(), c.Endpoints[0])
	}
	if !res.Setup.GatewayTLS {
		t.Error("the setup does not say TLS")
	}

	cfg = config(t, d, Connect, AllProtocols...)
	cfg.GatewayTLS, cfg.TLS = true, &tls.Config{MinVersion: tls.VersionTLS12}
	cfg.Target[REST] = "https://" + d.HTTP
	res = run(t, cfg)
	for _, c := range res.Cells {
		e := c.Endpoints[0]
		if e.Requests == 0 || e.Failed != e.Requests || len(e.Errors) == 0 || !strings.Contains(e.Errors[0].Kind, "certificate") {
			t.Errorf("%s without the CA: %d of %d failed: %+v", c.String(), e.Failed, e.Requests, e.Errors)
		}
	}
}
