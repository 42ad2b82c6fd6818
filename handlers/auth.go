package handlers

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
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

// EnsureCredentials creates whichever of basic-auth-user ("admin") and a
// random basic-auth-password is missing in dir, readable only by their
// owner. A file that exists is never rewritten: only what is missing is
// written. A directory created here is mode 0700; an existing one is left as
// it is (it may be shared with a gateway). It reports whether it wrote
// anything.
func EnsureCredentials(dir string) (bool, error) {
	userPath := filepath.Join(dir, "basic-auth-user")
	passPath := filepath.Join(dir, "basic-auth-password")
	needUser, err := missing(userPath)
	if err != nil {
		return false, err
	}
	needPass, err := missing(passPath)
	if err != nil {
		return false, err
	}
	if needUser || needPass {
		if err := ensureDir(dir); err != nil {
			return false, err
		}
	}
	created := false
	if needUser {
		wrote, err := writeNew(userPath, []byte("admin"))
		if err != nil {
			return false, err
		}
		created = created || wrote
	}
	if needPass {
		buf := make([]byte, 24)
		if _, err := rand.Read(buf); err != nil {
			return created, err
		}
		wrote, err := writeNew(passPath, []byte(base64.RawURLEncoding.EncodeToString(buf)))
		if err != nil {
			return created, err
		}
		created = created || wrote
	}
	return created, nil
}

// missing reports whether path does not exist; any other error is returned
// (a file that cannot be looked at is not replaced).
func missing(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, fs.ErrNotExist):
		return true, nil
	default:
		return false, err
	}
}

// ensureDir creates dir with mode 0700 (whatever the umask) unless it
// exists.
func ensureDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		return os.Chmod(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// writeNew writes a new file, mode 0600, and never replaces one: it reports
// false when the file appeared meanwhile. A failed write leaves no partial
// file.
func writeNew(path string, content []byte) (bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.Write(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return false, err
	}
	return true, nil
}
