package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/heliosdb/auth/issuer"
)

// usageBatch bounds the uses sent in one POST /v1/cluster/usage.
const usageBatch = 4096

// newNodeUsage aggregates last_used times on a gateway node and sends them
// to the issuer (POST /v1/cluster/usage, cluster key) every
// Config.UsageFlush, in batches of usageBatch; what fails to send is kept
// for the next flush.
func newNodeUsage(cfg *Config, key string, issuerURL func() string, log *slog.Logger) *issuer.UsageAggregator {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.IssuerCA != "" {
		if pem, err := os.ReadFile(cfg.IssuerCA); err == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			tr.TLSClientConfig.RootCAs = pool
		}
	}
	s := &usageSender{url: issuerURL, key: key, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	return issuer.NewUsageAggregator(cfg.UsageFlush, s.sendAll, log)
}

// usageSender posts batches of uses to the issuer.
type usageSender struct {
	url    func() string // the issuer (replica) followed now
	key    string
	client *http.Client
}

func (s *usageSender) sendAll(uses []issuer.Use) error {
	for len(uses) > 0 {
		n := min(len(uses), usageBatch)
		if err := s.send(uses[:n]); err != nil {
			return err
		}
		uses = uses[n:]
	}
	return nil
}

func (s *usageSender) send(uses []issuer.Use) error {
	body, err := json.Marshal(issuer.UsageBatch{Uses: uses})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url()+"/v1/cluster/usage", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "HeliosCluster "+s.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}
