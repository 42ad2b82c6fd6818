package handlers

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/faas-criu/faas-criu/api"
)

type fakeNamespaces struct{}

func (fakeNamespaces) Namespaces() []string { return []string{"openfaas-fn"} }

// Mount holds the whole route table: faas-criu's own routes on the router,
// behind basic auth, and the handlers faas-provider's Serve registers,
// protected too.
func TestMountRoutes(t *testing.T) {
	dir := t.TempDir()
	if _, err := EnsureCredentials(dir); err != nil {
		t.Fatal(err)
	}
	user, _ := os.ReadFile(filepath.Join(dir, "basic-auth-user"))
	pass, _ := os.ReadFile(filepath.Join(dir, "basic-auth-password"))
	creds, err := NewCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	invoked, queued := 0, 0
	backups := &fakeBackups{}
	router := mux.NewRouter()
	h := Mount(router, Deps{
		Functions: &fakeFunctions{}, Secrets: &fakeSecrets{}, Namespaces: fakeNamespaces{}, Logs: &fakeLogs{},
		Migrator: &fakeMigrator{}, Backups: backups,
		Target: func(_ api.Key, url, user, password, token string) api.MigrationTarget { return &fakeTarget{url: url} },
		Invoke: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { invoked++ }),
		Async:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { queued++ }),
		Info:   func() InfoDoc { return InfoDoc{} }, Credentials: creds, ImportMaxBytes: 1 << 20,
	})
	serve := func(method, path, body string, auth bool) int {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if auth {
			r.SetBasicAuth(strings.TrimSpace(string(user)), strings.TrimSpace(string(pass)))
		}
		w := httptest.NewRecorder()
		router.ServeHTTP(w, r)
		return w.Code
	}
	if code := serve("POST", "/function/hello/x", "", false); code != 200 || invoked != 1 {
		t.Errorf("/function/: %d, invoked %d times", code, invoked)
	}
	if code := serve("POST", "/async-function/hello", "", false); code != 200 || queued != 1 {
		t.Errorf("/async-function/: %d, queued %d times", code, queued)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/system/logs?name=hello"}, {"POST", "/system/migrate"}, {"POST", "/system/import"},
		{"GET", "/system/import/image?id=x"}, {"GET", "/system/backups/hello"}, {"POST", "/system/backups/hello/restore"},
	} {
		if code := serve(c.method, c.path, "", false); code != http.StatusUnauthorized {
			t.Errorf("%s %s without credentials: %d, want 401", c.method, c.path, code)
		}
	}
	if code := serve("POST", "/system/backups/hello/restore", `{"backup":"bak-1"}`, true); code != http.StatusAccepted || backups.name != "hello" {
		t.Errorf("restore: %d, restored %q", code, backups.name)
	}
	if code := serve("GET", "/system/backups/hello", "", true); code != 200 {
		t.Errorf("list backups: %d", code)
	}
	// What Serve registers is protected as well.
	w := httptest.NewRecorder()
	h.FunctionLister(w, httptest.NewRequest("GET", "/system/functions", nil))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("the function lister without credentials: %d, want 401", w.Code)
	}
}
