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
	"sync"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/issuer"
)

// usageBatch bounds the uses sent in one POST /v1/cluster/usage.
const usageBatch = 4096

// nodeUsage aggregates last_used times on a gateway node and sends them to
// the issuer (POST /v1/cluster/usage, cluster key) every Config.UsageFlush.
// Record is a store into a sharded map: no I/O on the authentication path.
// Uses that fail to send are kept for the next flush.
type nodeUsage struct {
	shards [16]struct {
		mu sync.Mutex
		m  map[core.TokenID]issuer.Use
	}
	url, key string
	client   *http.Client
	log      *slog.Logger
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

func newNodeUsage(cfg *Config, key string, log *slog.Logger) *nodeUsage {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.IssuerCA != "" {
		if pem, err := os.ReadFile(cfg.IssuerCA); err == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			tr.TLSClientConfig.RootCAs = pool
		}
	}
	u := &nodeUsage{url: cfg.IssuerURL + "/v1/cluster/usage", key: key, log: log,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, stop: make(chan struct{}), done: make(chan struct{})}
	for i := range u.shards {
		u.shards[i].m = map[core.TokenID]issuer.Use{}
	}
	go u.run(cfg.UsageFlush)
	return u
}

// Record notes that token id of account authenticated at at (Unix seconds).
func (u *nodeUsage) Record(id core.TokenID, account uint64, at int64) {
	sh := &u.shards[id[0]&15]
	sh.mu.Lock()
	if old, ok := sh.m[id]; !ok || old.At < at {
		sh.m[id] = issuer.Use{Account: account, Token: id, At: at}
	}
	sh.mu.Unlock()
}

func (u *nodeUsage) run(every time.Duration) {
	defer close(u.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			u.flush()
			return
		case <-t.C:
			u.flush()
		}
	}
}

// flush sends what was aggregated; what fails to send is recorded again.
func (u *nodeUsage) flush() {
	var uses []issuer.Use
	for i := range u.shards {
		sh := &u.shards[i]
		sh.mu.Lock()
		for id, use := range sh.m {
			uses = append(uses, use)
			delete(sh.m, id)
		}
		sh.mu.Unlock()
	}
	for len(uses) > 0 {
		n := min(len(uses), usageBatch)
		if err := u.send(uses[:n]); err != nil {
			u.log.Warn("sending last_used to the issuer", "err", err, "tokens", len(uses))
			for _, x := range uses {
				u.Record(x.Token, x.Account, x.At)
			}
			return
		}
		uses = uses[n:]
	}
}

func (u *nodeUsage) send(uses []issuer.Use) error {
	body, err := json.Marshal(issuer.UsageBatch{Uses: uses})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "HeliosCluster "+u.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := u.client.Do(req)
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

func (u *nodeUsage) close() {
	u.once.Do(func() { close(u.stop) })
	<-u.done
}
