package fleet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// loadKey reads the fleet key (64 hex digits), creating a random one when
// the file is missing: the first box makes it, and the others are given a
// copy of it (--fleet-key-file) when they join. It never goes into the KV
// store, so a copy of the store alone does not reveal the secrets.
func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("fleet key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("fleet key: %w", err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("fleet key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("fleet key %s: want 64 hex digits (32 bytes)", path)
	}
	return key, nil
}

// seal encrypts with AES-256-GCM; the random nonce leads the result. The
// secret's KV key is the additional data: a sealed value moved to another
// key does not open.
func seal(key []byte, name string, plain []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("fleet: nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, []byte(name)), nil
}

func open(key []byte, name string, sealed []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("fleet: sealed secret too short")
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(name))
	if err != nil {
		return nil, fmt.Errorf("fleet: secret %s does not open with this box's key (another fleet's key?): %w", name, err)
	}
	return plain, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return cipher.NewGCM(block)
}
