package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/heliosdb/auth/issuer/feed"
)

// runKeys is `heliosd keys rotate|retire ID`: key management on a running
// issuer through its cluster endpoints, authenticated with the cluster key.
//
//	heliosd keys rotate --issuer-url http://127.0.0.1:8080 --cluster-key-file data/cluster.key
//	heliosd keys retire 1 --issuer-url http://127.0.0.1:8080 --cluster-key-file data/cluster.key
func runKeys(args []string, out io.Writer) error {
	fs := pflag.NewFlagSet("heliosd keys", pflag.ContinueOnError)
	fs.SetOutput(out)
	fs.SortFlags = false
	url := fs.String("issuer-url", "http://127.0.0.1:8080", "the issuer's base URL")
	keyFile := fs.String("cluster-key-file", "./data/"+feed.ClusterKeyFile, "the issuer's cluster key")
	ca := fs.String("issuer-ca", "", "PEM certificate to trust for the issuer")
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: heliosd keys rotate|retire ID [--issuer-url URL] [--cluster-key-file F] [--issuer-ca PEM]")
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return errors.New("keys: name an action: rotate or retire ID")
	}
	action, rest := args[0], args[1:]
	if action == "-h" || action == "--help" || action == "-help" {
		fs.Usage()
		return pflag.ErrHelp
	}
	var body string
	switch action {
	case "rotate":
	case "retire":
		if len(rest) == 0 {
			return errors.New("keys retire: name the key id to retire")
		}
		id, err := strconv.ParseUint(rest[0], 10, 16)
		if err != nil {
			return fmt.Errorf("keys retire: %q is not a key id", rest[0])
		}
		body, rest = fmt.Sprintf(`{"id":%d}`, id), rest[1:]
	default:
		fs.Usage()
		return fmt.Errorf("keys: unknown action %q: use rotate or retire ID", action)
	}
	if err := fs.Parse(longDashes(fs, rest)); err != nil {
		return suggestFlag(fs, err)
	}
	key, err := feed.ReadClusterKey(*keyFile)
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig.RootCAs = pool
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*url, "/")+"/v1/cluster/keys/"+action, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "HeliosCluster "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("keys %s: %s: %s", action, resp.Status, strings.TrimSpace(string(msg)))
	}
	fmt.Fprint(out, string(msg))
	return nil
}
