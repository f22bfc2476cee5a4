package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/core/keyfile"
	"github.com/heliosdb/auth/core/tlsfile"
	"github.com/heliosdb/auth/internal/listeners"
	"github.com/heliosdb/auth/netio"
	"github.com/heliosdb/auth/protocols/rest"
)

// Live reload (SIGHUP, or `heliosd reload`, which sends SIGHUP to the
// process holding the data directory's lock): heliosd reads its
// configuration again from the same flags, variables and file, and applies
// what can change on a running daemon without dropping a session:
//
//   - the TLS certificate and key (the files are read again even when their
//     paths did not change): new handshakes use the new one at once, open
//     sessions keep theirs;
//   - the gateway's limits and timeouts (max_conns, max_conns_per_ip,
//     handshake_timeout, idle_timeout, max_preauth_message, max_message),
//     plaintext_allow (gateway and REST) and proxy_from;
//   - log_level;
//   - the upstream pools' sizes and waits (*_pool_size, *_pool_wait): a
//     larger pool lets waiting clients in at once, a smaller one closes
//     nothing but replaces no connection until fewer are open;
//   - the keyring file (data-dir/keyring.json, role all): keys added,
//     the signing key switched, retired keys retired.
//
// Every other setting needs a restart: a changed one is refused by name
// ("pg_listen (needs a restart)") while the rest is applied. A
// configuration that does not validate is refused whole and nothing
// changes. One log line says what changed and what was refused, and
// data-dir/reload.json records the outcome for `heliosd reload`.

// liveKeys are the settings a reload applies.
var liveKeys = map[string]bool{
	"max_conns": true, "max_conns_per_ip": true, "handshake_timeout": true, "idle_timeout": true,
	"max_preauth_message": true, "max_message": true, "plaintext_allow": true, "proxy_from": true,
	"log_level": true, "tls_cert": true, "tls_key": true,
	"pg_pool_size": true, "pg_pool_wait": true, "mysql_pool_size": true, "mysql_pool_wait": true,
	"redis_pool_size": true, "redis_pool_wait": true, "mongo_pool_size": true, "mongo_pool_wait": true,
}

// reloadStatusFile is the outcome of the last reload, in the data directory.
const reloadStatusFile = "reload.json"

// reloadStatus is reload.json.
type reloadStatus struct {
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	OK      bool      `json:"ok"`
	Changed []string  `json:"changed"`
	Refused []string  `json:"refused"`
	Error   string    `json:"error,omitempty"`
}

// daemonReload is the running daemon's reloader (one daemon per process);
// the parts of the daemon that hold live settings register with it.
var daemonReload *reloader

// reloader applies a new configuration to the running daemon.
type reloader struct {
	args  []string
	level *slog.LevelVar
	certs *certSwitch
	log   *slog.Logger
	// notify tells systemd a reload is under way (RELOADING=1, then
	// READY=1 with its outcome in STATUS=).
	notify *sdNotifier

	mu       sync.Mutex
	cur      Config // the configuration in force
	seq      int64
	gw       *netio.Gateway
	httpLn   net.Listener
	ups      *upstreams
	ring     *core.Keyring
	ringPath string
}

// newReloader starts from the configuration in force.
func newReloader(args []string, cfg *Config, level *slog.LevelVar, certs *certSwitch, log *slog.Logger) *reloader {
	return &reloader{args: args, cur: *cfg, level: level, certs: certs, log: log, notify: newNotifier(os.Getenv, log)}
}

// setGateway registers the gateway's transport (nil-safe). A reload that
// came before (during the start) is applied to it now.
func (r *reloader) setGateway(gw *netio.Gateway) {
	if r != nil {
		r.mu.Lock()
		r.gw = gw
		r.catchUp()
		r.mu.Unlock()
	}
}

// setHTTPListener registers the REST listener (nil-safe), as setGateway.
func (r *reloader) setHTTPListener(ln net.Listener) {
	if r != nil {
		r.mu.Lock()
		r.httpLn = ln
		r.catchUp()
		r.mu.Unlock()
	}
}

// catchUp applies the configuration in force to what registered after a
// reload (r.mu held).
func (r *reloader) catchUp() {
	if r.seq > 0 {
		if err := r.applyLive(&r.cur); err != nil {
			r.log.Error("reload", "err", err)
		}
	}
}

// setUpstreams registers the upstream servers' pools (nil-safe).
func (r *reloader) setUpstreams(u *upstreams) {
	if r != nil {
		r.mu.Lock()
		r.ups = u
		if r.seq > 0 { // a reload came during the start: its pool sizes
			for _, p := range r.pools(&r.cur) {
				if p.up != nil {
					if err := p.up.Resize(*p.size, *p.wait); err != nil {
						r.log.Error("reload: pool not resized", "setting", p.sizeKey, "err", err)
					}
				}
			}
		}
		r.mu.Unlock()
	}
}

// setKeyring registers the keyring and its file (nil-safe; role all).
func (r *reloader) setKeyring(ring *core.Keyring, path string) {
	if r != nil {
		r.mu.Lock()
		r.ring, r.ringPath = ring, path
		r.mu.Unlock()
	}
}

// watch reloads on every SIGHUP until ctx ends. It is started before the
// listeners, so an early SIGHUP does not kill the process.
func (r *reloader) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.reload()
			}
		}
	}()
}

// reload reads the configuration again and applies it; see the comment at
// the top of this file.
func (r *reloader) reload() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	st := reloadStatus{Seq: r.seq, Time: time.Now().UTC(), Changed: []string{}, Refused: []string{}}
	r.notify.send("RELOADING=1\nSTATUS=reloading")
	defer func() {
		r.writeStatus(&st)
		status := "serving; reloaded"
		if !st.OK {
			status = "serving; reload refused: " + st.Error
		}
		r.notify.send("READY=1\nSTATUS=" + strings.ReplaceAll(status, "\n", " "))
	}()
	next, err := loadConfig(r.args, os.LookupEnv, io.Discard)
	if err == nil {
		err = checkDeep(&next)
	}
	if err != nil {
		st.Error = err.Error()
		r.log.Error("reload refused: the configuration is invalid; nothing changed", "err", err)
		return
	}
	next.caFile = r.cur.caFile
	changed, refused := diffConfig(&r.cur, &next)
	// The new values, the restart-only ones left as they are.
	apply := r.cur
	for _, k := range changed {
		copySetting(&apply, &next, k)
	}
	if r.certs != nil {
		cert, err := loadCert(&apply)
		if err != nil {
			st.Error = err.Error()
			r.log.Error("reload refused: TLS certificate; nothing changed", "err", err)
			return
		}
		if old := r.certs.swap(cert); serialOf(old) != serialOf(cert) {
			changed = append(changed, "tls certificate (serial "+serialOf(cert)+")")
		}
	}
	changed, refused = r.resizePools(&apply, changed, refused)
	if err := r.applyLive(&apply); err != nil {
		st.Error = err.Error()
		r.log.Error("reload", "err", err)
	}
	if r.ring != nil {
		if what, err := r.reloadKeyring(); err != nil {
			st.Error = err.Error()
			r.log.Error("reload keyring", "err", err)
		} else if what != "" {
			changed = append(changed, what)
		}
	}
	r.cur = apply
	st.OK, st.Changed, st.Refused = st.Error == "", append(st.Changed, changed...), append(st.Refused, refused...)
	// At info level, or the new level when it is higher: the line is
	// always written.
	r.log.Log(context.Background(), max(slog.LevelInfo, r.level.Level()), "reloaded",
		"changed", strings.Join(changed, ", "), "refused", strings.Join(refused, ", "))
}

// applyLive gives the gateway, the REST listener and the logger the live
// settings of c.
func (r *reloader) applyLive(c *Config) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToLower(c.LogLevel))); err == nil && r.level != nil {
		r.level.Set(lvl)
	}
	allow, err := netio.ParsePrefixes(c.PlaintextAllow)
	if err != nil {
		return err
	}
	if len(c.PlaintextAllow) == 0 {
		allow = []netip.Prefix{}
	}
	proxyFrom, err := netio.ParsePrefixes(c.ProxyFrom)
	if err != nil {
		return err
	}
	if r.gw != nil {
		r.gw.Reconfigure(netio.Live{MaxConns: c.MaxConns, MaxConnsPerIP: c.MaxConnsPerIP, HandshakeTimeout: c.HandshakeTimeout,
			IdleTimeout: c.IdleTimeout, MaxPreAuthMessage: c.MaxPreAuthMessage, MaxMessage: c.MaxMessage,
			PlaintextAllow: allow, ProxyFrom: proxyFrom})
	}
	if r.httpLn != nil {
		rest.SetPlaintextAllow(r.httpLn, allow)
	}
	return nil
}

// reloadKeyring syncs the keyring with its file and describes the change
// ("" when none).
func (r *reloader) reloadKeyring() (string, error) {
	file, err := keyfile.Load(r.ringPath)
	if err != nil {
		return "", err
	}
	before := keyringSummary(r.ring)
	if err := keyfile.Sync(r.ring, file); err != nil {
		return "", err
	}
	if after := keyringSummary(r.ring); after != before {
		return "keyring (" + after + ")", nil
	}
	return "", nil
}

// keyringSummary names the keys, the signing one and the retired ones.
func keyringSummary(ring *core.Keyring) string {
	var ids, retired []string
	for _, k := range ring.Keys() {
		ids = append(ids, fmt.Sprint(k.ID))
		if k.Retired {
			retired = append(retired, fmt.Sprint(k.ID))
		}
	}
	return fmt.Sprintf("keys %s, signing %d, retired %s", strings.Join(ids, ","), ring.Signing().ID, strings.Join(retired, ","))
}

// writeStatus records st in data-dir/reload.json (atomically).
func (r *reloader) writeStatus(st *reloadStatus) {
	b, _ := json.Marshal(st)
	path := filepath.Join(r.cur.DataDir, reloadStatusFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		_ = os.Rename(tmp, path)
	}
}

// diffConfig lists the settings that differ between a and b: those a
// reload applies, and the others ("key (needs a restart)").
func diffConfig(a, b *Config) (changed, refused []string) {
	for _, l := range listeners.All {
		if a.Listen[l.Protocol] != b.Listen[l.Protocol] {
			refused = append(refused, l.TOMLKey()+" (needs a restart)")
		}
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := va.Type()
	for i := range t.NumField() {
		key := t.Field(i).Tag.Get("toml")
		if key == "" || key == "-" || reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			continue
		}
		if liveKeys[key] {
			changed = append(changed, key)
		} else {
			refused = append(refused, key+" (needs a restart)")
		}
	}
	slices.Sort(refused)
	return changed, refused
}

// copySetting copies the setting key (a toml tag) from src to dst.
func copySetting(dst, src *Config, key string) {
	vd, vs := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	t := vd.Type()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("toml") == key {
			vd.Field(i).Set(vs.Field(i))
		}
	}
}

// loadCert reads c's certificate and key (or the self-signed pair in the
// data directory) again.
func loadCert(c *Config) (*tls.Certificate, error) {
	cfg, _, _, err := tlsfile.LoadOrGenerate(c.DataDir, c.TLSCert, c.TLSKey, certHosts(c))
	if err != nil {
		return nil, err
	}
	return &cfg.Certificates[0], nil
}

// serialOf is a certificate's serial number in hex ("" when unparsable).
func serialOf(c *tls.Certificate) string {
	if c == nil || len(c.Certificate) == 0 {
		return ""
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return ""
	}
	return x.SerialNumber.Text(16)
}

// certSwitch serves the TLS certificate in force: the server configuration
// (and every clone of it, per listener) asks it at each handshake, so a
// reload's swap takes effect for the next handshake; open sessions keep
// the certificate they were made with.
type certSwitch struct {
	cur atomic.Pointer[tls.Certificate]
}

// newCertSwitch moves cfg's certificate into a certSwitch and points cfg
// at it. Call it after anything that reads cfg.Certificates at start.
func newCertSwitch(cfg *tls.Config) *certSwitch {
	s := &certSwitch{}
	if len(cfg.Certificates) > 0 {
		s.cur.Store(&cfg.Certificates[0])
	}
	cfg.Certificates = nil
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c := s.cur.Load(); c != nil {
			return c, nil
		}
		return nil, errors.New("no TLS certificate")
	}
	return s
}

// swap puts c in force and returns the previous certificate.
func (s *certSwitch) swap(c *tls.Certificate) *tls.Certificate { return s.cur.Swap(c) }
