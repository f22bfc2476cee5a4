package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// clientScopes are the scopes of the tokens a run creates for its clients:
// what an application's token usually holds.
var clientScopes = []string{"database:read", "database:write"}

// apiToken is a token the run created: its secret and its id.
type apiToken struct {
	Token, ID string
}

// api calls the issuer's REST API with the creator's token.
type api struct {
	base   string
	http   *http.Client
	bearer string
}

// apiError is an API answer other than 2xx.
type apiError struct {
	Status        int
	Code, Message string
}

// Error says the status, code and message.
func (e *apiError) Error() string {
	return fmt.Sprintf("API %d %s: %s", e.Status, e.Code, e.Message)
}

func (a *api) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.base, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+a.bearer)
	req.Header.Set("User-Agent", "helios-bench")
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("HeliosDB API at %s: %w", a.base, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &eb)
		return &apiError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// createTokens creates n tokens named prefix-1 … prefix-n with
// clientScopes, lasting a day.
func (a *api) createTokens(ctx context.Context, prefix string, n int) ([]apiToken, error) {
	out := make([]apiToken, 0, n)
	for i := 1; i <= n; i++ {
		var r struct {
			Token string `json:"token"`
			ID    string `json:"id"`
		}
		body := map[string]any{"name": fmt.Sprintf("%s-%d", prefix, i), "scopes": clientScopes, "expires_in_days": 1}
		if err := a.do(ctx, "POST", "/v1/auth/tokens", body, &r); err != nil {
			return out, fmt.Errorf("create token %d of %d: %w", i, n, err)
		}
		out = append(out, apiToken{Token: r.Token, ID: r.ID})
	}
	return out, nil
}

// revoke revokes token id.
func (a *api) revoke(ctx context.Context, id string) error {
	return a.do(ctx, "DELETE", "/v1/auth/tokens/"+id, nil, nil)
}

// revokeAll revokes the run's tokens at its end, even an interrupted one.
func (a *api) revokeAll(toks []apiToken) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, t := range toks {
		_ = a.revoke(ctx, t.ID)
	}
}
