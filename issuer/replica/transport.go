package replica

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Connection kinds: the first byte a dialer writes after the TLS
// handshake.
const (
	connRaft    = 'R' // raft's own RPCs (NetworkTransport)
	connForward = 'F' // commands and read-index requests for the leader
)

// identity derives the replicas' TLS identity from the cluster key: an
// Ed25519 key from HMAC-SHA256(cluster key, label) and a self-signed
// certificate for it. Every replica holding the same cluster key derives
// the same key, so mutual TLS with the peer's public key pinned to it is
// authentication with the cluster credential, without a CA to manage.
func identity(clusterKey string) (tls.Certificate, ed25519.PublicKey, error) {
	m := hmac.New(sha256.New, []byte(clusterKey))
	m.Write([]byte("heliosdb raft replica identity v1"))
	priv := ed25519.NewKeyFromSeed(m.Sum(nil))
	pub := priv.Public().(ed25519.PublicKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "heliosdb-raft-replica"},
		NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, pub, nil
}

// errNotReplica is a peer whose certificate is not the cluster's.
var errNotReplica = errors.New("raft peer is not a replica of this cluster (its TLS identity does not come from the same cluster key and keyring)")

// tlsConfigs returns the server and client configurations: TLS 1.3 both
// ways, each side presenting the derived certificate and accepting only
// a peer presenting a certificate for the derived public key.
func tlsConfigs(clusterKey string) (server, client *tls.Config, err error) {
	cert, pub, err := identity(clusterKey)
	if err != nil {
		return nil, nil, err
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errNotReplica
		}
		c, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return errNotReplica
		}
		p, ok := c.PublicKey.(ed25519.PublicKey)
		if !ok || subtle.ConstantTimeCompare(p, pub) != 1 {
			return errNotReplica
		}
		return nil
	}
	server = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAnyClientCert, VerifyPeerCertificate: verify}
	// The peer is authenticated by VerifyPeerCertificate (its key pinned),
	// not by a CA chain and host name.
	client = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		InsecureSkipVerify: true, VerifyPeerCertificate: verify} //nolint:gosec // pinned key, see above
	return server, client, nil
}

// streamLayer is raft's StreamLayer over mutual TLS. One listener takes
// raft's connections and the forwarding connections: the first byte
// after the handshake tells them apart.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	forward   func(net.Conn) // serves a forwarding connection
	log       *slog.Logger

	raftConns chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once

	// conns are raft's open connections, both ways (closeConns).
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

// trackedConn is a raft connection the layer can close on shutdown.
type trackedConn struct {
	net.Conn
	s    *streamLayer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

func (s *streamLayer) track(c net.Conn) net.Conn {
	t := &trackedConn{Conn: c, s: s}
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*trackedConn]struct{}{}
	}
	s.conns[t] = struct{}{}
	s.mu.Unlock()
	return t
}

// closeConns closes every raft connection: a replication pipeline
// waiting on a peer that stopped reading ends with it, so raft's
// shutdown can finish.
func (s *streamLayer) closeConns() {
	s.mu.Lock()
	list := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		list = append(list, c)
	}
	s.mu.Unlock()
	for _, c := range list {
		c.Close()
	}
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func newStreamLayer(ln net.Listener, advertise net.Addr, server, client *tls.Config, forward func(net.Conn), log *slog.Logger) *streamLayer {
	s := &streamLayer{ln: ln, advertise: advertise, server: server, client: client, forward: forward, log: log,
		raftConns: make(chan net.Conn), closed: make(chan struct{})}
	go s.acceptLoop()
	return s
}

func (s *streamLayer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("raft listener", "err", err)
			s.Close()
			return
		}
		go s.handshake(c)
	}
}

// handshake authenticates an incoming connection and routes it by kind.
func (s *streamLayer) handshake(c net.Conn) {
	tc := tls.Server(c, s.server)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	var kind [1]byte
	if err := tc.Handshake(); err != nil {
		s.log.Warn("raft connection refused", "from", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	if _, err := tc.Read(kind[:]); err != nil {
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	switch kind[0] {
	case connRaft:
		select {
		case s.raftConns <- s.track(tc):
		case <-s.closed:
			tc.Close()
		}
	case connForward:
		s.forward(tc)
	default:
		tc.Close()
	}
}

// Accept implements net.Listener: the next raft connection.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.raftConns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (s *streamLayer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		err = s.ln.Close()
	})
	return err
}

// Addr implements net.Listener: the advertised address.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial implements raft.StreamLayer.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := s.dial(string(address), connRaft, timeout)
	if err != nil {
		return nil, err
	}
	return s.track(c), nil
}

// dial opens an authenticated connection of kind to address.
func (s *streamLayer) dial(address string, kind byte, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", address)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, s.client)
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := tc.Write([]byte{kind}); err != nil {
		tc.Close()
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// slogWriter passes raft's hclog lines to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, l := range []struct {
		tag   string
		level slog.Level
	}{{"[ERROR]", slog.LevelError}, {"[WARN]", slog.LevelWarn}, {"[INFO]", slog.LevelInfo}, {"[DEBUG]", slog.LevelDebug}, {"[TRACE]", slog.LevelDebug}} {
		if i := bytes.Index(line, []byte(l.tag)); i >= 0 {
			level, line = l.level, bytes.TrimSpace(line[i+len(l.tag):])
			break
		}
	}
	w.log.Log(context.Background(), level, string(line))
	return len(p), nil
}
