// Package seal encrypts values at rest (AES-256-GCM) and computes keyed
// lookup hashes (HMAC-SHA256), so that a database file copied off a server or
// a station reveals no product key and no hardware detail.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// KeyFileName is the data key file created in a data directory on first start.
const KeyFileName = "keystation.key"

// EnvDataKey names the environment variable that may carry the data key
// (base64 of 32 bytes) instead of the key file.
const EnvDataKey = "KEYSTATION_DATA_KEY"

// Box seals and opens values and computes lookup hashes with keys derived from
// one 32-byte data key.
type Box struct {
	aead cipher.AEAD
	mac  []byte
	// macs holds keyed HMAC states to reuse: Reset brings one back to its
	// key, which spares each Hash setting the key up again.
	macs sync.Pool
}

// New returns a Box for a 32-byte data key.
func New(dataKey []byte) (*Box, error) {
	if len(dataKey) != 32 {
		return nil, fmt.Errorf("data key must be 32 bytes, got %d", len(dataKey))
	}
	block, err := aes.NewCipher(derive(dataKey, "keystation/seal/aes-256-gcm/v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	b := &Box{aead: aead, mac: derive(dataKey, "keystation/seal/hmac-sha256/v1")}
	b.macs.New = func() any { return hmac.New(sha256.New, b.mac) }
	return b, nil
}

func derive(key []byte, label string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	return h.Sum(nil)
}

// Load returns the Box for a data directory: from envValue when it is not
// empty (base64 of 32 bytes), else from dir/keystation.key, which is created
// with mode 0600 when it does not exist. created reports whether a new key
// file was written.
func Load(dir, envValue string) (box *Box, created bool, err error) {
	if strings.TrimSpace(envValue) != "" {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(envValue))
		if err != nil || len(k) != 32 {
			return nil, false, fmt.Errorf("%s must be the base64 of 32 bytes", EnvDataKey)
		}
		b, err := New(k)
		return b, false, err
	}
	path := filepath.Join(dir, KeyFileName)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, false, err
		}
		if err := writeKeyFile(path, k); err != nil {
			return nil, false, err
		}
		b, err := New(k)
		return b, true, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("read data key: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(k) != 32 {
		return nil, false, fmt.Errorf("data key file %s is damaged: want the base64 of 32 bytes", path)
	}
	b, err := New(k)
	return b, false, err
}

func writeKeyFile(path string, k []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create data key file: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Seal encrypts plain; purpose is bound into the ciphertext as associated
// data, so a value sealed for one column cannot be passed off as another.
func (b *Box) Seal(plain []byte, purpose string) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("seal: no randomness: " + err.Error())
	}
	return b.aead.Seal(nonce, nonce, plain, []byte(purpose))
}

// SealString is Seal for strings.
func (b *Box) SealString(plain, purpose string) []byte { return b.Seal([]byte(plain), purpose) }

// ErrOpen is returned when a value cannot be decrypted: a wrong data key or a
// damaged value.
var ErrOpen = errors.New("seal: cannot decrypt value (wrong data key or damaged data)")

// Open decrypts a value sealed for purpose.
func (b *Box) Open(sealed []byte, purpose string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	p, err := b.aead.Open(nil, sealed[:n], sealed[n:], []byte(purpose))
	if err != nil {
		return nil, ErrOpen
	}
	return p, nil
}

// OpenString is Open for strings.
func (b *Box) OpenString(sealed []byte, purpose string) (string, error) {
	p, err := b.Open(sealed, purpose)
	return string(p), err
}

// Hash returns the hex keyed hash of value within a namespace, for lookups
// by equality without storing the value.
func (b *Box) Hash(namespace, value string) string {
	h := b.macs.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(namespace))
	h.Write([]byte{0})
	h.Write([]byte(value))
	var sum [sha256.Size]byte
	out := hex.EncodeToString(h.Sum(sum[:0]))
	b.macs.Put(h)
	return out
}

// Check returns a value that identifies the data key without revealing it;
// stores keep it to refuse a database opened with the wrong key.
func (b *Box) Check() string { return b.Hash("keystation/check", "v1") }
