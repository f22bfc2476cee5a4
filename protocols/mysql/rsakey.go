package mysql

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/heliosdb/auth/core/atomicfile"
)

// KeyFileName is the RSA key pair's file in the data directory.
const KeyFileName = "mysql-rsa.pem"

// rsaKeyBits is the size of a generated key (MySQL's default).
const rsaKeyBits = 2048

// LoadOrGenerateKey reads the RSA private key that caching_sha2_password's
// key exchange uses from dataDir/mysql-rsa.pem, generating it (mode 0600) on
// first start. A key file that group or others can read is refused: the key
// decrypts tokens sent without TLS.
func LoadOrGenerateKey(dataDir string) (*rsa.PrivateKey, error) {
	path := filepath.Join(dataDir, KeyFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return generateKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("load MySQL RSA key %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load MySQL RSA key %s: %w", path, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load MySQL RSA key %s: mode %#o lets other users read the key; run chmod 600 %s", path, perm, path)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("load MySQL RSA key %s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		if k1, err1 := x509.ParsePKCS1PrivateKey(blk.Bytes); err1 == nil {
			return k1, nil
		}
		return nil, fmt.Errorf("load MySQL RSA key %s: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load MySQL RSA key %s: the key is not RSA", path)
	}
	return rk, nil
}

// generateKey makes a key and writes it to path atomically with mode 0600.
func generateKey(path string) (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate MySQL RSA key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("generate MySQL RSA key: %w", err)
	}
	err = atomicfile.Write(path, 0o600, func(w io.Writer) error {
		return pem.Encode(w, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	})
	if err != nil {
		return nil, fmt.Errorf("write MySQL RSA key %s: %w", path, err)
	}
	return k, nil
}

// publicKeyPEM returns the PEM SubjectPublicKeyInfo that the server sends
// after a client's request-public-key byte.
func publicKeyPEM(k *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// decryptToken undoes the client side of the key exchange: RSA-OAEP(SHA-1)
// of (password NUL) XOR nonce, the nonce repeated. It returns the token
// without its NUL, in a new slice (the caller clears it after verifying).
func decryptToken(k *rsa.PrivateKey, nonce, ciphertext []byte) ([]byte, error) {
	plain, err := rsa.DecryptOAEP(sha1.New(), nil, k, ciphertext, nil)
	if err != nil {
		return nil, err
	}
	for i := range plain {
		plain[i] ^= nonce[i%len(nonce)]
	}
	if len(plain) == 0 || plain[len(plain)-1] != 0 {
		return nil, errMalformed
	}
	return plain[:len(plain)-1], nil
}
