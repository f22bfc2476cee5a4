package mysql

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/auth/core"
	"github.com/heliosdb/auth/netio"
)

// gateway serves the MySQL protocol on a loopback port (plaintext allowed
// there, so full authentication without TLS is the RSA exchange) and
// returns its address and a token.
func gateway(t testing.TB, loops int) (*netio.Gateway, string, string) {
	t.Helper()
	now := time.Now()
	ring := core.GenerateKeyring(now.Add(-time.Hour))
	p, err := New(Options{Key: key(t)})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := netio.Serve(netio.Config{Keyring: ring, Revocations: core.NewMemoryRevocations(), Loops: loops,
		Logger: slog.New(slog.DiscardHandler)}, []netio.Listener{{Addr: "127.0.0.1:0", Protocol: p}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop(context.Background()) })
	tok, _, err := core.NewMinter(ring).Mint(nil, core.Claims{Type: core.TypeLive, ID: core.NewTokenID(), Account: 7,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), Scopes: core.AllScopes})
	if err != nil {
		t.Fatal(err)
	}
	return gw, gw.Addr("mysql").String(), string(tok)
}

// wire is a minimal MySQL client connection.
type wire struct {
	c   net.Conn
	r   *bufio.Reader
	seq byte
}

func (w *wire) read() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(w.r, h[:]); err != nil {
		return nil, err
	}
	p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	if _, err := io.ReadFull(w.r, p); err != nil {
		return nil, err
	}
	w.seq = h[3] + 1
	if len(p) > 0 && p[0] == 0xff {
		return nil, errors.New("mysql error: " + string(p))
	}
	return p, nil
}

func (w *wire) write(payload []byte) error {
	_, err := w.c.Write(pkt(w.seq, payload))
	return err
}

// rsaLogin connects and authenticates with a scramble no cache matches, so
// the server asks for full authentication: the RSA key exchange.
func rsaLogin(addr, tok string) (*wire, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	w := &wire{c: c, r: bufio.NewReader(c)}
	if err := w.auth(tok); err != nil {
		c.Close()
		return nil, err
	}
	return w, nil
}

func (w *wire) auth(tok string) error {
	g, err := w.read()
	if err != nil {
		return err
	}
	i := bytes.IndexByte(g[1:], 0) + 2 + 4
	nonce := append(append([]byte(nil), g[i:i+8]...), g[i+8+1+2+1+2+2+1+10:][:12]...)
	if err := w.write(handshakeResponse(clientCaps, "default", "caching_sha2_password", make([]byte, 32))); err != nil {
		return err
	}
	if p, err := w.read(); err != nil || !bytes.Equal(p, []byte{1, 4}) {
		return fmt.Errorf("want full authentication, got %x %v", p, err)
	}
	if err := w.write([]byte{requestPublicKey}); err != nil {
		return err
	}
	p, err := w.read()
	if err != nil {
		return err
	}
	blk, _ := pem.Decode(p[1:])
	if blk == nil {
		return errors.New("no public key")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return err
	}
	plain := append([]byte(tok), 0)
	for j := range plain {
		plain[j] ^= nonce[j%len(nonce)]
	}
	enc, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub.(*rsa.PublicKey), plain, nil)
	if err != nil {
		return err
	}
	if err := w.write(enc); err != nil {
		return err
	}
	if p, err = w.read(); err != nil || p[0] != 0 {
		return fmt.Errorf("want OK, got %x %v", p, err)
	}
	return nil
}

// wireFastLogin connects and authenticates by fast authentication (the token
// must be in the server's cache for this address): no RSA, no hand-off.
func wireFastLogin(addr, tok string) (*wire, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	w := &wire{c: c, r: bufio.NewReader(c)}
	g, err := w.read()
	if err == nil {
		i := bytes.IndexByte(g[1:], 0) + 2 + 4
		nonce := append(append([]byte(nil), g[i:i+8]...), g[i+8+1+2+1+2+2+1+10:][:12]...)
		err = w.write(handshakeResponse(clientCaps, "default", "caching_sha2_password", clientScramble(tok, nonce)))
	}
	var p []byte
	if err == nil {
		p, err = w.read()
	}
	if err == nil && !bytes.Equal(p, []byte{1, fastAuthSuccess}) {
		err = fmt.Errorf("want fast authentication, got %x", p)
	}
	if err == nil {
		_, err = w.read() // OK
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return w, nil
}

// select1 runs SELECT 1 up to the result set's closing EOF.
func (w *wire) select1() error {
	w.seq = 0
	if err := w.write([]byte("\x03SELECT 1")); err != nil {
		return err
	}
	for {
		p, err := w.read()
		if err != nil {
			return err
		}
		if len(p) > 0 && len(p) < 9 && p[0] == 0xfe {
			return nil
		}
	}
}

func (w *wire) quit() {
	w.seq = 0
	_ = w.write([]byte{comQuit})
	w.c.Close()
}

// TestRSAOffloadGateway: through the transport, full authentication by RSA
// (the session offloaded to a goroutine before the encrypted token) works
// for concurrent clients, whose sessions keep working and release their
// connections, descriptors and goroutines.
func TestRSAOffloadGateway(t *testing.T) {
	gw, addr, tok := gateway(t, 1)
	run := func() {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 4 {
			wg.Go(func() {
				for range 8 {
					w, err := rsaLogin(addr, tok)
					if err == nil {
						err = w.select1()
						if err == nil {
							err = w.select1()
						}
						w.quit()
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := 0; i < 200 && gw.Open() != 0; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if n := gw.Open(); n != 0 {
			t.Fatalf("%d connections still open", n)
		}
	}
	run()
	runtime.GC()
	g0 := runtime.NumGoroutine()
	run()
	time.Sleep(50 * time.Millisecond)
	if g1 := runtime.NumGoroutine(); g1 > g0+2 {
		t.Fatalf("goroutines %d → %d", g0, g1)
	}
}
