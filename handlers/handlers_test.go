package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/faas-criu/faas-criu/api"
)

func TestDecodeJSON(t *testing.T) {
	cases := []struct {
		body string
		want string // "" for success, else part of the error
	}{
		{`{"service":"a"}`, ""},
		{``, "empty"},
		{`{"service":`, "malformed JSON"},
		{`{"service":"a"} {"x":1}`, "trailing data"},
		{`[1,2]`, "malformed JSON"},
		{`{"service":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, "too large"},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		var v struct{ Service string }
		err := decodeJSON(w, r, &v)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%.40q: %v", c.body, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%.40q: %v, want %q", c.body, err, c.want)
		}
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	created, err := EnsureCredentials(dir)
	if err != nil || !created {
		t.Fatalf("EnsureCredentials = %v, %v", created, err)
	}
	for _, f := range []string{"basic-auth-user", "basic-auth-password"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if again, _ := EnsureCredentials(dir); again {
		t.Error("existing credentials were regenerated")
	}
	pass, _ := os.ReadFile(filepath.Join(dir, "basic-auth-password"))
	c, err := NewCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := RequireAuth(c, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	try := func(user, pw string, set bool) (int, string) {
		r := httptest.NewRequest("GET", "/system/info", nil)
		if set {
			r.SetBasicAuth(user, pw)
		}
		w := httptest.NewRecorder()
		h(w, r)
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	if code, _ := try("admin", string(pass), true); code != 204 {
		t.Errorf("right credentials: %d", code)
	}
	_, wrongPass := try("admin", "nope", true)
	_, wrongUser := try("root", string(pass), true)
	if code, _ := try("", "", false); code != 401 {
		t.Errorf("no credentials: %d", code)
	}
	if wrongPass != wrongUser || wrongPass != "invalid credentials" {
		t.Errorf("answers differ by the wrong part: %q vs %q", wrongPass, wrongUser)
	}

	// Rotation: new files are picked up without a restart.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, "basic-auth-password"), []byte("rotated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	os.Chtimes(filepath.Join(dir, "basic-auth-password"), now, now)
	if code, _ := try("admin", "rotated", true); code != 204 {
		t.Errorf("rotated password refused: %d", code)
	}
	if code, _ := try("admin", string(pass), true); code != 401 {
		t.Errorf("old password still accepted: %d", code)
	}
}

func TestEnsureCredentialsWritesOnlyWhatIsMissing(t *testing.T) {
	const (
		keptUser = "operator"
		keptPass = "  s3cret with spaces\n\x00binary\xff\n" // kept byte for byte, not trimmed
	)
	cases := []struct {
		name       string
		dirExists  bool
		dirMode    os.FileMode // of an existing directory
		user, pass *string     // existing content, nil for missing
		wantCreate bool
	}{
		{name: "both missing, no directory", wantCreate: true},
		{name: "both missing, open directory", dirExists: true, dirMode: 0o755, wantCreate: true},
		{name: "only user missing", dirExists: true, dirMode: 0o750, pass: ptr(keptPass), wantCreate: true},
		{name: "only password missing", dirExists: true, dirMode: 0o700, user: ptr(keptUser), wantCreate: true},
		{name: "both present", dirExists: true, dirMode: 0o755, user: ptr(keptUser), pass: ptr(keptPass)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "credentials")
			userPath, passPath := filepath.Join(dir, "basic-auth-user"), filepath.Join(dir, "basic-auth-password")
			old := time.Now().Add(-time.Hour).Truncate(time.Second)
			if c.dirExists {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, c.dirMode); err != nil {
					t.Fatal(err)
				}
			}
			for path, content := range map[string]*string{userPath: c.user, passPath: c.pass} {
				if content == nil {
					continue
				}
				if err := os.WriteFile(path, []byte(*content), 0o640); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(path, old, old); err != nil {
					t.Fatal(err)
				}
			}

			created, err := EnsureCredentials(dir)
			if err != nil {
				t.Fatal(err)
			}
			if created != c.wantCreate {
				t.Errorf("created = %v, want %v", created, c.wantCreate)
			}
			di, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			wantDir := os.FileMode(0o700) // created here
			if c.dirExists {
				wantDir = c.dirMode // left as it was
			}
			if di.Mode().Perm() != wantDir {
				t.Errorf("directory mode %04o, want %04o", di.Mode().Perm(), wantDir)
			}
			check := func(path string, kept *string, generated func([]byte) bool) {
				t.Helper()
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if kept != nil {
					if string(b) != *kept {
						t.Errorf("%s was rewritten: %q, want %q", filepath.Base(path), b, *kept)
					}
					if !fi.ModTime().Equal(old) || fi.Mode().Perm() != 0o640 {
						t.Errorf("%s was touched: modified %v (want %v), mode %04o (want 0640)", filepath.Base(path), fi.ModTime(), old, fi.Mode().Perm())
					}
					return
				}
				if !generated(b) {
					t.Errorf("%s generated as %q", filepath.Base(path), b)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s generated with mode %04o, want 0600", filepath.Base(path), fi.Mode().Perm())
				}
			}
			check(userPath, c.user, func(b []byte) bool { return string(b) == "admin" })
			check(passPath, c.pass, func(b []byte) bool { return len(b) >= 32 && !strings.ContainsAny(string(b), " \n") })
			if _, err := NewCredentials(dir); err != nil {
				t.Errorf("the result does not load: %v", err)
			}

			// A second call finds everything and changes nothing.
			before, _ := os.ReadFile(passPath)
			if again, err := EnsureCredentials(dir); again || err != nil {
				t.Errorf("second call: created %v, %v", again, err)
			}
			if after, _ := os.ReadFile(passPath); string(after) != string(before) {
				t.Errorf("the second call rewrote the password")
			}
		})
	}
}

func TestEnsureCredentialsKeepsGeneratedPassword(t *testing.T) {
	// The provider's own password survives the loss of the user file.
	dir := t.TempDir()
	if _, err := EnsureCredentials(dir); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(dir, "basic-auth-password"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "basic-auth-user")); err != nil {
		t.Fatal(err)
	}
	if created, err := EnsureCredentials(dir); !created || err != nil {
		t.Fatalf("EnsureCredentials after the user file was removed = %v, %v", created, err)
	}
	if second, _ := os.ReadFile(filepath.Join(dir, "basic-auth-password")); string(second) != string(first) {
		t.Errorf("the password changed when only the user was missing: %q -> %q", first, second)
	}
}

func ptr(s string) *string { return &s }

// fakeInvoker sends every request to one backend.
type fakeInvoker struct {
	addr     string
	err      error
	released int
	asked    string
}

func (f *fakeInvoker) Acquire(ctx context.Context, ns, name string) (string, func(), error) {
	f.asked = name + "|" + ns
	if f.err != nil {
		return "", nil, f.err
	}
	return f.addr, func() { f.released++ }, nil
}

func TestProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Upstream", "yes")
		fmt.Fprintf(w, "%s %s ?%s %s xff=%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, body, r.Header.Get("X-Forwarded-For"))
	}))
	defer backend.Close()
	inv := &fakeInvoker{addr: strings.TrimPrefix(backend.URL, "http://")}
	router := mux.NewRouter()
	px := NewProxy(inv, &Transports{})
	router.Handle("/function/{name:[-a-zA-Z_0-9.]+}", px)
	router.Handle("/function/{name:[-a-zA-Z_0-9.]+}/{params:.*}", px)
	srv := httptest.NewServer(router)
	defer srv.Close()

	cases := []struct {
		method, path, body string
		want, asked        string
	}{
		{"GET", "/function/f", "", "GET / ? ", "f|"},
		{"POST", "/function/f.openfaas-fn/a/b%2Fc?x=1&y=%20", "hi", "POST /a/b%2Fc ?x=1&y=%20 hi", "f|openfaas-fn"},
		{"DELETE", "/function/f/", "", "DELETE / ? ", "f|"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(b), c.want) || resp.Header.Get("X-Upstream") != "yes" || !strings.Contains(string(b), "xff=127.0.0.1") {
			t.Errorf("%s %s: %q", c.method, c.path, b)
		}
		if inv.asked != c.asked {
			t.Errorf("%s: asked for %q, want %q", c.path, inv.asked, c.asked)
		}
	}
	if inv.released != len(cases) {
		t.Errorf("released %d of %d", inv.released, len(cases))
	}

	inv.err = fmt.Errorf("wake: %w", api.ErrTimeout)
	resp, _ := http.Get(srv.URL + "/function/f")
	if resp.StatusCode != 504 || resp.Header.Get("X-OpenFaaS-Internal") != "proxy" {
		t.Errorf("wake timeout: %d", resp.StatusCode)
	}
	resp.Body.Close()

	inv.err, inv.addr = nil, "127.0.0.1:1" // nothing listens there
	resp, _ = http.Get(srv.URL + "/function/f")
	if resp.StatusCode != 502 {
		t.Errorf("unreachable replica: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

// A request the handlers refuse themselves is a 400, on one line.
func TestWriteErrorBadRequest(t *testing.T) {
	w := httptest.NewRecorder()
	writeError(w, httptest.NewRequest("POST", "/system/migrate", nil), badRequest("to is %s\nreally", "missing"))
	if w.Code != http.StatusBadRequest || w.Body.String() != "to is missing; really\n" {
		t.Errorf("%d %q", w.Code, w.Body.String())
	}
}
