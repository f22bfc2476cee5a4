package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/heliosdb/auth/core/atomicfile"
)

// credentials is what `helios auth login` keeps between commands.
type credentials struct {
	APIURL    string    `json:"api_url"`
	Email     string    `json:"email,omitempty"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// credentialsPath is <user config dir>/helios/credentials.json
// ($XDG_CONFIG_HOME or ~/.config on Linux).
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory: %w", err)
	}
	return filepath.Join(dir, "helios", "credentials.json"), nil
}

// loadCredentials returns the saved credentials, or nil when there are none.
func loadCredentials() (*credentials, error) {
	p, err := credentialsPath()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): log in again with helios auth login", p, err)
	}
	return &c, nil
}

// save writes the credentials with mode 0600 (directory 0700), replacing
// the file atomically.
func (c *credentials) save() (string, error) {
	p, err := credentialsPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteBytes(p, 0o600, append(b, '\n')); err != nil {
		return "", fmt.Errorf("save credentials: %w", err)
	}
	return p, nil
}

// removeCredentials deletes the saved credentials (no error when absent).
func removeCredentials() error {
	p, err := credentialsPath()
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// currentToken returns the token to use: HELIOS_TOKEN overrides the saved
// one. source names where it came from; creds is the saved file (nil if
// none).
func currentToken() (token, source string, creds *credentials, err error) {
	creds, err = loadCredentials()
	if t := os.Getenv("HELIOS_TOKEN"); t != "" {
		return t, "HELIOS_TOKEN", creds, nil
	}
	if err != nil {
		return "", "", nil, err
	}
	if creds == nil || creds.Token == "" {
		return "", "", nil, errors.New("not logged in: run helios auth login (or set HELIOS_TOKEN)")
	}
	p, _ := credentialsPath()
	return creds.Token, p, creds, nil
}
