package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/heliosdb/auth/issuer"
	"github.com/heliosdb/auth/issuer/feed"
)

// usageBatch bounds the uses sent in one POST /v1/cluster/usage.
const usageBatch = 4096

// newNodeUsage aggregates last_used times on a gateway node and sends them
// to the issuer (POST /v1/cluster/usage, cluster key) every
// Config.UsageFlush, in batches of usageBatch; what fails to send is kept
// for the next flush. It reaches the issuer the way the follower does (its
// client: the same CA and connections).
func newNodeUsage(cfg *Config, key string, follower *feed.Follower, log *slog.Logger) *issuer.UsageAggregator {
	s := &usageSender{url: follower.URL, key: key, client: follower.Client()}
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
