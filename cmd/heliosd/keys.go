package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/pflag"
)

// runKeys is `heliosd keys rotate|retire ID`: key management on a running
// issuer through its cluster endpoints, authenticated with the cluster key.
//
//	heliosd keys rotate --issuer-url http://127.0.0.1:8080 --cluster-key-file data/cluster.key
//	heliosd keys retire 1 --issuer-url http://127.0.0.1:8080 --cluster-key-file data/cluster.key
func runKeys(args []string, out io.Writer) error {
	fs := commandFlags("heliosd keys", "usage: heliosd keys rotate|retire ID [--issuer-url URL] [--cluster-key-file F] [--issuer-ca PEM]", out)
	admin := clusterAdminFlags(fs, "the issuer's")
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := admin.do(ctx, http.MethodPost, "/v1/cluster/keys/"+action, body)
	if err != nil {
		return fmt.Errorf("keys %s: %w", action, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprint(out, string(msg))
	return nil
}
