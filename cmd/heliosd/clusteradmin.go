package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/pflag"

	"github.com/heliosdb/auth/issuer/feed"
)

// clusterAdmin is what the administration commands (heliosd keys, raft,
// backup) need to call a running issuer's cluster endpoints: its URL, the
// cluster key that authenticates the call and the CA to trust over TLS.
type clusterAdmin struct {
	url, keyFile, ca *string
}

// commandFlags is the flag set of a heliosd command (backup, restore,
// keys, raft): errors and --help go to out, the usage line first, then the
// flags in the order they were added.
func commandFlags(name, usage string, out io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintln(out, usage)
		fs.PrintDefaults()
	}
	return fs
}

// clusterAdminFlags adds --issuer-url, --cluster-key-file and --issuer-ca to
// fs; who names what the URL points at ("the issuer's", "a replica's").
func clusterAdminFlags(fs *pflag.FlagSet, who string) clusterAdmin {
	return clusterAdmin{
		url:     fs.String("issuer-url", "http://127.0.0.1:8080", who+" base URL"),
		keyFile: fs.String("cluster-key-file", "./data/"+feed.ClusterKeyFile, "the cluster key (data-dir/cluster.key)"),
		ca:      fs.String("issuer-ca", "", "PEM certificate to trust for "+strings.TrimSuffix(who, "'s")),
	}
}

// do sends method path with body (JSON, or none when empty) to the issuer,
// authenticated with the cluster key, and returns the response; a status
// other than 200 is an error carrying the issuer's answer.
func (a clusterAdmin) do(ctx context.Context, method, path, body string) (*http.Response, error) {
	key, err := feed.ReadClusterKey(*a.keyFile)
	if err != nil {
		return nil, err
	}
	tr, err := feed.IssuerTransport(*a.ca)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(*a.url, "/")+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "HeliosCluster "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}
