package ops

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heliosdb/auth/internal/testdaemon"
	"github.com/heliosdb/auth/issuer/feed"
)

var apiClient = &http.Client{Timeout: 20 * time.Second}

// api sends a JSON request to base (http://host:port) and returns the
// status and body; safe on any goroutine (no t.Fatal).
func api(base, method, path, bearer string, body any) (int, []byte, error) {
	return testdaemon.Call(method, base+path, bearer, body)
}

// login returns a session token for email.
func login(base, email, password string) (string, error) {
	code, out, err := api(base, "POST", "/v1/auth/login", "", map[string]string{"email": email, "password": password})
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("login %s: %d %s", email, code, out)
	}
	var r struct{ Token string }
	if err := json.Unmarshal(out, &r); err != nil || r.Token == "" {
		return "", fmt.Errorf("login %s: %s", email, out)
	}
	return r.Token, nil
}

// createToken creates a database:read token.
func createToken(base, bearer, name string) (tok, id string, err error) {
	code, out, err := api(base, "POST", "/v1/auth/tokens", bearer, map[string]any{"name": name, "scopes": []string{"database:read"}})
	if err != nil {
		return "", "", err
	}
	if code != http.StatusOK && code != http.StatusCreated {
		return "", "", fmt.Errorf("create token: %d %s", code, out)
	}
	var r struct{ Token, ID string }
	if err := json.Unmarshal(out, &r); err != nil || r.Token == "" {
		return "", "", fmt.Errorf("create token: %s", out)
	}
	return r.Token, r.ID, nil
}

// revokeToken revokes token id.
func revokeToken(base, bearer, id string) error {
	code, out, err := api(base, "DELETE", "/v1/auth/tokens/"+id, bearer, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK && code != http.StatusNoContent {
		return fmt.Errorf("revoke %s: %d %s", id, code, out)
	}
	return nil
}

// pgAuth logs in to the PostgreSQL listener at addr with tok (plaintext
// from loopback) and returns the error, nil when the token was accepted.
func pgAuth(addr, tok string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, "postgresql://default:"+tok+"@"+addr+"/main?sslmode=disable&connect_timeout=5")
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

// feedSeq reads the issuer's feed snapshot (cluster key) and returns its
// sequence number: the issuer's committed watermark.
func feedSeq(t *testing.T, base, dataDir string) uint64 {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(dataDir, feed.ClusterKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"/v1/cluster/feed?after=0", nil)
	req.Header.Set("Authorization", "HeliosCluster "+strings.TrimSpace(string(key)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := apiClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("feed: %s", resp.Status)
	}
	br := bufio.NewReader(resp.Body)
	var e feed.Event
	var buf []byte
	for {
		if buf, err = feed.ReadFrame(br, buf, &e); err != nil {
			t.Fatalf("feed: %v", err)
		}
		if e.Kind == feed.KindSnapshotEnd {
			return e.Seq
		}
	}
}

// runHeliosd runs the heliosd binary with args and returns its output.
func runHeliosd(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := execCommand(bin, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func execCommand(bin string, args ...string) *exec.Cmd { return exec.Command(bin, args...) }
