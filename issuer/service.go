package issuer

import (
	"errors"
	"log/slog"
	"net/http"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"github.com/heliosdb/auth/core"
)

// Options configure a Service. NewService fills the unset fields that need
// a value (EnsureDefaults); DefaultOptions also sets the limits whose zero
// value disables them.
type Options struct {
	// Lifetimes are the token lifetimes (live 7 days, test 24 h, service 90 days).
	Lifetimes core.Lifetimes
	// RefreshGrace is how long a refreshed token keeps working after
	// /v1/auth/refresh returned its successor (default 60 s), so requests in
	// flight with the old token do not fail.
	RefreshGrace time.Duration
	// LoginPerEmail and LoginPerIP are failed login attempts allowed per
	// minute per email and per source address (a burst of that many, then an
	// even refill). A successful login costs nothing. 0 disables the limit.
	LoginPerEmail int
	LoginPerIP    int
	// SignupPerEmail and SignupPerIP are failed signups allowed per minute
	// per email and per source address (a burst of that many, then an even
	// refill). A signup that creates its account costs nothing; input that
	// fails validation is refused before the limit and costs nothing either,
	// so what is counted is in practice 409 EMAIL_TAKEN: the answer that
	// tells whether an account exists. 0 disables the limit.
	SignupPerEmail int
	SignupPerIP    int
	// Password are the argon2id parameters for new hashes.
	Password PasswordParams
	// MaxConcurrentHashes bounds argon2id hashes running at once (each takes
	// Password.Memory KiB).
	MaxConcurrentHashes int
	// UsageFlush is how often aggregated last_used times are written.
	UsageFlush time.Duration
	// KeyringPath is the keyring file that key rotation and retirement
	// rewrite (mode 0600); empty keeps changes in memory only.
	KeyringPath string
	// Now is the clock (time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Upstreams are the databases behind the gateway (proxy mode): a
	// database registered with POST /v1/databases is created there first,
	// one deleted is dropped there first. nil: the registry alone.
	Upstreams Upstreams
}

// DefaultOptions returns the recommended options: the refresh grace and the
// login and signup limits (whose zero value disables them), and every
// default of EnsureDefaults.
func DefaultOptions() Options {
	o := Options{
		RefreshGrace:   60 * time.Second,
		LoginPerEmail:  10,
		LoginPerIP:     60,
		SignupPerEmail: 10,
		SignupPerIP:    20,
	}
	return *o.EnsureDefaults()
}

// EnsureDefaults gives every unset field of o that needs a value its
// default and returns o: Lifetimes (the guide's, when MaxDays is 0),
// Password (DefaultPasswordParams), MaxConcurrentHashes 4, UsageFlush 5 s,
// Now time.Now, and a Logger that discards. RefreshGrace and the login and
// signup limits stay as they are: 0 means none.
func (o *Options) EnsureDefaults() *Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Lifetimes.MaxDays == 0 {
		o.Lifetimes = core.DefaultLifetimes()
	}
	if o.Password.Time == 0 {
		o.Password = DefaultPasswordParams
	}
	if o.MaxConcurrentHashes <= 0 {
		o.MaxConcurrentHashes = 4
	}
	if o.UsageFlush <= 0 {
		o.UsageFlush = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Service is the issuer's logic over a Store: accounts, login, tokens and
// their lifecycle. It is safe for concurrent use.
type Service struct {
	store    *Store
	ring     *core.Keyring
	opts     Options
	log      *slog.Logger
	minters  sync.Pool
	emailLim *limiter
	ipLim    *limiter
	// signupEmailLim and signupIPLim count failed signups.
	signupEmailLim *limiter
	signupIPLim    *limiter
	hashSem        chan struct{}
	// dummyHash is checked when a login names no account, so that a failed
	// login costs one argon2id hash either way.
	dummyHash string
	usage     *UsageAggregator
}

// NewService returns a service over store, minting with ring's signing key.
func NewService(store *Store, ring *core.Keyring, opts Options) *Service {
	opts.EnsureDefaults()
	s := &Service{store: store, ring: ring, opts: opts, log: opts.Logger,
		emailLim: newLimiter(opts.LoginPerEmail), ipLim: newLimiter(opts.LoginPerIP),
		signupEmailLim: newLimiter(opts.SignupPerEmail), signupIPLim: newLimiter(opts.SignupPerIP),
		hashSem: make(chan struct{}, opts.MaxConcurrentHashes)}
	s.minters.New = func() any { return core.NewMinter(ring) }
	s.dummyHash = hashPassword(string(core.NewTokenID().String()), opts.Password)
	s.usage = newUsage(store, opts.UsageFlush, s.log)
	return s
}

// Close writes the pending last_used times. The store stays open.
func (s *Service) Close() { s.usage.Close() }

// Store returns the service's store.
func (s *Service) Store() *Store { return s.store }

// Lifetimes returns the token lifetimes the service issues with (the
// default and the longest expires_in_days of each type).
func (s *Service) Lifetimes() core.Lifetimes { return s.opts.Lifetimes }

// Used records that a token authenticated a request at at (Unix seconds).
// It aggregates in memory (flushed every Options.UsageFlush) and allocates
// nothing for a token already seen.
func (s *Service) Used(id core.TokenID, account uint64, at int64) { s.usage.Record(id, account, at) }

// Record is Used under the name gateways' usage recorders share.
func (s *Service) Record(id core.TokenID, account uint64, at int64) { s.usage.Record(id, account, at) }

// Minimum and maximum password length in characters.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// commonPasswords are refused whatever their length.
var commonPasswords = map[string]bool{"password": true, "password1": true, "12345678": true, "123456789": true,
	"1234567890": true, "qwertyuiop": true, "iloveyou": true, "11111111": true, "00000000": true, "abcdefgh": true,
	"letmein1": true, "passw0rd": true, "qwerty123": true, "welcome1": true, "changeme": true, "administrator": true}

// checkEmail validates an email address and returns it trimmed.
func checkEmail(email string) (string, *APIError) {
	if len(email) > 254 {
		return "", badRequest(CodeInvalidEmail, "email is longer than 254 characters")
	}
	a, err := mail.ParseAddress(email)
	local, domain, ok := strings.Cut(email, "@")
	if err != nil || a.Address != email || !ok || local == "" || !strings.Contains(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", badRequest(CodeInvalidEmail, "%q is not an email address: send a bare address such as you@example.com", email)
	}
	return email, nil
}

// checkPasswordStrength refuses passwords that are too short, too long,
// common, or the email itself.
func checkPasswordStrength(pw, email string) *APIError {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordLen:
		return badRequest(CodeWeakPassword, "password is too short: use at least %d characters (a passphrase is best)", MinPasswordLen)
	case n > MaxPasswordLen:
		return badRequest(CodeWeakPassword, "password is too long: use at most %d characters", MaxPasswordLen)
	case commonPasswords[strings.ToLower(pw)]:
		return badRequest(CodeWeakPassword, "password is one of the most common passwords: choose another")
	case strings.EqualFold(pw, email) || strings.EqualFold(pw, strings.SplitN(email, "@", 2)[0]):
		return badRequest(CodeWeakPassword, "password must not be your email address")
	case strings.Count(pw, pw[:firstRuneLen(pw)]) == n: // counted in characters: "éééééééé" too
		return badRequest(CodeWeakPassword, "password repeats one character: choose another")
	}
	return nil
}

// firstRuneLen is the length in bytes of s's first character.
func firstRuneLen(s string) int {
	_, n := utf8.DecodeRuneInString(s)
	return n
}

// Signup creates an account. from is the client's address, for the rate
// limit: after SignupPerIP failed signups from one address (or
// SignupPerEmail for one email) in a minute, signups answer 429
// RATE_LIMITED before the store is asked whether the email is taken, so 409
// EMAIL_TAKEN cannot be used to enumerate accounts quickly.
func (s *Service) Signup(email, password string, from netip.Addr) (*Account, error) {
	email, apiErr := checkEmail(email)
	if apiErr != nil {
		return nil, apiErr
	}
	if apiErr := checkPasswordStrength(password, email); apiErr != nil {
		return nil, apiErr
	}
	now := s.opts.Now()
	ipKey, emailKey := sourceKey(from), strings.ToLower(email)
	if ok, wait := s.signupIPLim.take(ipKey, now); !ok {
		return nil, rateLimited(wait, "too many failed signups from this address")
	}
	// Unlike login, the address's attempt is not refunded when the email's
	// limit answers: a 429 for one email says someone kept failing to take
	// it, which must cost what a 409 costs.
	if ok, wait := s.signupEmailLim.take(emailKey, now); !ok {
		return nil, rateLimited(wait, "too many failed signups for this email")
	}
	s.hashSem <- struct{}{}
	hash := hashPassword(password, s.opts.Password)
	<-s.hashSem
	res, err := s.store.Submit(&Command{Op: OpSignup, At: s.opts.Now().Unix(), Email: email, Hash: hash})
	if errors.Is(err, ErrEmailTaken) {
		s.log.Info("signup refused: email taken", "from", ipKey)
		return nil, &APIError{Status: http.StatusConflict, Code: CodeEmailTaken,
			Message: "an account with this email already exists: log in with POST /v1/auth/login"}
	}
	// Only EMAIL_TAKEN tells the client something: anything else (a new
	// account, or the store failing) gives the attempt back.
	s.signupIPLim.refund(ipKey)
	s.signupEmailLim.refund(emailKey)
	if err != nil {
		return nil, err
	}
	s.log.Info("account created", "account", res.Account.ID)
	return res.Account, nil
}

// accountByEmail looks an account up by email, case-insensitively.
func (s *Service) accountByEmail(email string) (*Account, error) {
	v, err := s.store.getRaw(emailKey(strings.ToLower(email)))
	if err != nil {
		return nil, err
	}
	id := u64ToID(v)
	var a Account
	if err := s.store.get(accountKey(id), &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Login checks email and password and returns a new live session token with
// every scope, named "login", and its record. from is the client's address,
// for the rate limit.
func (s *Service) Login(email, password string, from netip.Addr) (string, *TokenRecord, error) {
	return s.LoginNamed(email, password, from, "login")
}

// LoginNamed is Login for a caller that names the session's token: the web
// console names the token behind each console session "Web console", so the
// token list shows it for what it is. The checks, rate limits, cost and
// errors are Login's.
func (s *Service) LoginNamed(email, password string, from netip.Addr, name string) (string, *TokenRecord, error) {
	if email == "" || password == "" {
		return "", nil, badRequest(CodeInvalidRequest, "send both email and password")
	}
	now := s.opts.Now()
	ipKey, emailKey := sourceKey(from), strings.ToLower(email)
	if ok, wait := s.ipLim.take(ipKey, now); !ok {
		return "", nil, rateLimited(wait, "too many failed logins from this address")
	}
	if ok, wait := s.emailLim.take(emailKey, now); !ok {
		s.ipLim.refund(ipKey)
		return "", nil, rateLimited(wait, "too many failed logins for this account")
	}
	// On a replica, the account (a password just changed, an account
	// just created elsewhere) is read as fresh as on the leader.
	if err := s.store.ReadFence(); err != nil {
		s.ipLim.refund(ipKey)
		s.emailLim.refund(emailKey)
		return "", nil, err
	}
	acc, err := s.accountByEmail(email)
	if err != nil && !errors.Is(err, pebble.ErrNotFound) {
		return "", nil, err
	}
	hash := s.dummyHash
	if acc != nil {
		hash = acc.Hash
	}
	s.hashSem <- struct{}{}
	match, herr := checkPassword(password, hash)
	<-s.hashSem
	if herr != nil {
		return "", nil, herr
	}
	if acc == nil || !match {
		s.log.Info("login failed", "from", ipKey)
		return "", nil, &APIError{Status: http.StatusUnauthorized, Code: CodeInvalidCredentials,
			Message: "email or password is incorrect"}
	}
	s.ipLim.refund(ipKey)
	s.emailLim.refund(emailKey)
	id := core.NewTokenID()
	rec := &TokenRecord{ID: id, Account: acc.ID, Name: name, Type: core.TypeLive, Scopes: core.AllScopes,
		Session: id.String()}
	tok, rec, err := s.create(rec, 0)
	if err == nil {
		s.log.Info("login", "account", acc.ID, "token_id", rec.ID.String())
	}
	return tok, rec, err
}

// sourceKey is the rate-limit key of a client address: the address itself
// for IPv4, its /64 for IPv6 (one subscriber usually holds a whole /64).
func sourceKey(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.Unmap().String()
}

func rateLimited(wait time.Duration, why string) *APIError {
	secs := max(1, int((wait+time.Second-1)/time.Second))
	return &APIError{Status: http.StatusTooManyRequests, Code: CodeRateLimited, RetryAfter: secs,
		Message: why + ": retry after " + strconv.Itoa(secs) + " seconds"}
}
