package handlers

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/auth"
	"github.com/openfaas/faas-provider/types"
)

// Credentials reads the basic-auth user and password from the OpenFaaS
// secret files (basic-auth-user, basic-auth-password) and reads them again
// when they change, so they can be rotated without a restart.
type Credentials struct {
	dir string

	mu      sync.Mutex
	user    [32]byte // SHA-256 of the user
	pass    [32]byte // SHA-256 of the password
	modTime time.Time
	loaded  bool
}

// NewCredentials loads the credentials in dir.
func NewCredentials(dir string) (*Credentials, error) {
	c := &Credentials{dir: dir}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Credentials) newest() time.Time {
	var t time.Time
	for _, f := range []string{"basic-auth-user", "basic-auth-password"} {
		if fi, err := os.Stat(filepath.Join(c.dir, f)); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

func (c *Credentials) reload() error {
	mt := c.newest()
	creds, err := (&auth.ReadBasicAuthFromDisk{SecretMountPath: c.dir}).Read()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.user, c.pass = sha256.Sum256([]byte(creds.User)), sha256.Sum256([]byte(creds.Password))
	c.modTime, c.loaded = mt, true
	c.mu.Unlock()
	return nil
}

// valid compares in constant time, and compares both parts whatever the
// first one gave, so the answer's timing tells nothing.
func (c *Credentials) valid(user, pass string) bool {
	if mt := c.newest(); !mt.Equal(c.currentModTime()) {
		_ = c.reload() // a half-written rotation keeps the old credentials
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	c.mu.Lock()
	defer c.mu.Unlock()
	okUser := subtle.ConstantTimeCompare(u[:], c.user[:])
	okPass := subtle.ConstantTimeCompare(p[:], c.pass[:])
	return c.loaded && okUser&okPass == 1
}

func (c *Credentials) currentModTime() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.modTime
}

// RequireAuth answers 401 unless the request carries the credentials. The
// answer does not say which part was wrong.
func RequireAuth(c *Credentials, next http.HandlerFunc) http.HandlerFunc {
	if c == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || !c.valid(user, pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="faas-criu"`)
			http.Error(w, "invalid credentials", http.StatusUnauthorized)
			return
		}
		next(w, r)
	}
}

// Protect wraps every /system handler in RequireAuth.
func Protect(h *types.FaaSHandlers, c *Credentials) {
	if c == nil {
		return
	}
	for _, f := range []*http.HandlerFunc{&h.FunctionLister, &h.DeployFunction, &h.UpdateFunction,
		&h.DeleteFunction, &h.FunctionStatus, &h.ScaleFunction, &h.Secrets, &h.Logs,
		&h.ListNamespaces, &h.Info} {
		*f = RequireAuth(c, *f)
	}
}

// EnsureCredentials creates basic-auth-user ("admin") and a random
// basic-auth-password in dir, readable only by their owner, unless both
// exist. It reports whether it created them.
func EnsureCredentials(dir string) (bool, error) {
	userPath := filepath.Join(dir, "basic-auth-user")
	passPath := filepath.Join(dir, "basic-auth-password")
	_, uerr := os.Stat(userPath)
	_, perr := os.Stat(passPath)
	if uerr == nil && perr == nil {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return false, err
	}
	if uerr != nil {
		if err := os.WriteFile(userPath, []byte("admin"), 0o600); err != nil {
			return false, err
		}
	}
	if err := os.WriteFile(passPath, []byte(base64.RawURLEncoding.EncodeToString(buf)), 0o600); err != nil {
		return false, err
	}
	return true, nil
}
