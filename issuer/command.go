package issuer

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/heliosdb/auth/core"
)

// Op names a command.
type Op string

// Commands. Each is applied by the store's single writer (see apply.go).
const (
	// OpSignup creates an account (Email, Hash, At). Its id is the command's
	// sequence number.
	OpSignup Op = "signup"
	// OpCreateToken stores a new token record (Token). Its issued-at is
	// moved up to the account's not-before epoch when it lies before it.
	OpCreateToken Op = "create_token"
	// OpRevokeToken revokes one token (Account, TokenID, At).
	OpRevokeToken Op = "revoke_token"
	// OpRefresh stores Token as the successor of TokenID and schedules the
	// old token's revocation at RevokeAt.
	OpRefresh Op = "refresh"
	// OpLogoutAll moves the account's not-before epoch to NotBefore.
	OpLogoutAll Op = "logout_all"
	// OpRetireKey records the retirement of signing key KeyID.
	OpRetireKey Op = "retire_key"
	// OpTouch records last-used times (Uses), aggregated by the caller.
	OpTouch Op = "touch"
	// OpCreateDatabase registers database Database (Test). With Init it is
	// the default database, created once per data directory: a no-op when
	// the registry was initialized before (so a deleted "main" stays deleted).
	OpCreateDatabase Op = "create_database"
	// OpDeleteDatabase removes database Database from the registry.
	OpDeleteDatabase Op = "delete_database"
	// OpKeyring records that the keyring changed (KeyID became the signing
	// key); on a single issuer the key material lives only in the 0600
	// keyring file. On a replicated store it carries a KeyChange, applied
	// to the keyring on every replica (keyring_replicated.go).
	OpKeyring Op = "keyring"
	// OpCompact drops the revocation log entries Seqs (entries of tokens
	// that have expired) and moves the compacted watermark up to the
	// highest of them.
	OpCompact Op = "compact"
)

// Command is one serialized mutation of issuer state.
type Command struct {
	Op        Op           `json:"op"`
	At        int64        `json:"at,omitempty"` // when it was proposed, Unix seconds
	Email     string       `json:"email,omitempty"`
	Hash      string       `json:"hash,omitempty"`
	Account   uint64       `json:"account,omitempty"`
	TokenID   core.TokenID `json:"token_id,omitzero"`
	Token     *TokenRecord `json:"token,omitempty"`
	RevokeAt  int64        `json:"revoke_at,omitempty"`
	NotBefore int64        `json:"not_before,omitempty"`
	KeyID     uint16       `json:"key_id,omitempty"`
	Uses      []Use        `json:"uses,omitempty"`
	Database  string       `json:"database,omitempty"`
	Test      bool         `json:"test,omitempty"`
	Init      bool         `json:"init,omitempty"`
	Seqs      []uint64     `json:"seqs,omitempty"`
	// KeyChange: a replicated store's keyring change (OpKeyring).
	KeyChange *KeyChange `json:"key_change,omitempty"`
}

// Use is one token's last use, as flushed by the usage aggregator.
type Use struct {
	Account uint64       `json:"account"`
	Token   core.TokenID `json:"token"`
	At      int64        `json:"at"`
}

// Encode returns the command's serialized form.
func (c *Command) Encode() ([]byte, error) { return json.Marshal(c) }

// DecodeCommand parses a serialized command.
func DecodeCommand(b []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	return &c, nil
}

// Result is what applying a command produced.
type Result struct {
	// Seq is the command's sequence number (0 when it changed nothing).
	Seq     uint64
	Account *Account
	Token   *TokenRecord
	DB      *Database
}

// Errors a command can fail with. They change nothing.
var (
	ErrEmailTaken       = errors.New("an account with this email already exists")
	ErrNoAccount        = errors.New("no such account")
	ErrTokenNotFound    = errors.New("no such token")
	ErrTokenRevoked     = errors.New("the token is already revoked")
	ErrAlreadyRefreshed = errors.New("the token was already refreshed")
	ErrClosed           = errors.New("issuer store is closed")
	ErrDatabaseExists   = errors.New("the database already exists")
	ErrNoDatabase       = errors.New("no such database")
)
