package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/openfaas/faas-provider/types"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestURL(t *testing.T) {
	for _, tt := range []struct {
		name, flag, env, stack, want string
	}{
		// faas-cli's order: flag, stack's provider.gateway, OPENFAAS_URL.
		{"flag wins", "http://flag:1/", "http://env:2", "http://stack:3", "http://flag:1"},
		{"stack next", "", "http://env:2", "http://stack:3/", "http://stack:3"},
		{"env next", "", "http://env:2//", "", "http://env:2"},
		{"default", "", "", "", DefaultURL},
		{"blank is unset", " ", "", "", DefaultURL},
		// As in faas-cli, the default URL given counts as not given.
		{"flag equal to the default", DefaultURL, "http://env:2", "", "http://env:2"},
		{"stack equal to the default", "", "http://env:2", DefaultURL + "/", "http://env:2"},
		// Without a scheme, http (faas-cli prefixes http://).
		{"env without scheme", "", "127.0.0.1:31112", "", "http://127.0.0.1:31112"},
		{"flag without scheme", "box.local:8080/", "", "", "http://box.local:8080"},
		{"stack without scheme", "", "", "box:8080", "http://box:8080"},
		{"https kept", "", "https://Box.Example:443", "", "https://box.example:443"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			if tt.env != "" {
				env["OPENFAAS_URL"] = tt.env
			}
			if got := URL(tt.flag, tt.stack, envOf(env)); got != tt.want {
				t.Errorf("URL = %q, want %q", got, tt.want)
			}
		})
	}
}

func writeConfig(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func basicToken(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func writeProviderFiles(t *testing.T, dir, user, pass string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "basic-auth-user"), []byte(user+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "basic-auth-password"), []byte(pass), 0o600)
}

func TestFindCredentials(t *testing.T) {
	root := t.TempDir()
	cfgDir := filepath.Join(root, "cfg")
	home := filepath.Join(root, "home")
	provDir := filepath.Join(root, "prov")
	writeConfig(t, cfgDir, `auths:
- gateway: http://127.0.0.1:8080
  auth: basic
  token: `+basicToken("admin", "s3cr:et")+`
- gateway: https://remote.example.com/
  auth: oauth2
  token: bearer-token
options:
- gateway: http://127.0.0.1:8080
  options: {}
`)
	writeConfig(t, filepath.Join(home, ".openfaas"), `auths:
- gateway: http://127.0.0.1:9999
  auth: basic
  token: `+basicToken("homeuser", "homepass")+"\n")
	writeProviderFiles(t, provDir, "provuser", "provpass")

	tests := []struct {
		name    string
		gateway string
		env     map[string]string
		want    *Credentials
	}{
		{"config dir, basic, password with colon", "http://127.0.0.1:8080/",
			map[string]string{"OPENFAAS_CONFIG": cfgDir},
			&Credentials{User: "admin", Password: "s3cr:et", Source: filepath.Join(cfgDir, "config.yml")}},
		{"config dir, oauth2, trailing slash in config", "https://remote.example.com",
			map[string]string{"OPENFAAS_CONFIG": cfgDir},
			&Credentials{Token: "bearer-token", Source: filepath.Join(cfgDir, "config.yml")}},
		{"home dir when OPENFAAS_CONFIG unset", "http://127.0.0.1:9999",
			map[string]string{"HOME": home},
			&Credentials{User: "homeuser", Password: "homepass", Source: filepath.Join(home, ".openfaas", "config.yml")}},
		{"config wins over provider files", "http://127.0.0.1:8080",
			map[string]string{"OPENFAAS_CONFIG": cfgDir, "secret_mount_path": provDir},
			&Credentials{User: "admin", Password: "s3cr:et", Source: filepath.Join(cfgDir, "config.yml")}},
		{"provider files when no entry matches", "http://127.0.0.1:8095",
			map[string]string{"OPENFAAS_CONFIG": cfgDir, "secret_mount_path": provDir},
			&Credentials{User: "provuser", Password: "provpass", Source: provDir}},
		{"explicit secret_mount_path also for a remote gateway", "http://10.1.2.3:8080",
			map[string]string{"HOME": filepath.Join(root, "nohome"), "secret_mount_path": provDir},
			&Credentials{User: "provuser", Password: "provpass", Source: provDir}},
		{"no config, unreadable default provider dir, remote gateway", "http://10.1.2.3:8080",
			map[string]string{"HOME": filepath.Join(root, "nohome")}, nil},
		{"provider dir missing files is skipped", "http://localhost:8080",
			map[string]string{"HOME": filepath.Join(root, "nohome"), "secret_mount_path": filepath.Join(root, "empty")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindCredentials(strings.TrimRight(tt.gateway, "/"), envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FindCredentials = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFindCredentialsConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name, config, want string
	}{
		{"malformed yaml", "auths: [", "faas-cli config"},
		{"bad base64", "auths:\n- gateway: http://g\n  auth: basic\n  token: '***'\n", "token is not base64"},
		{"no colon", "auths:\n- gateway: http://g\n  auth: basic\n  token: " + base64.StdEncoding.EncodeToString([]byte("nocolon")) + "\n", "not user:password"},
		{"unknown auth", "auths:\n- gateway: http://g\n  auth: kerberos\n  token: x\n", `auth "kerberos" is not supported`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, tt.config)
			_, err := FindCredentials("http://g", envOf(map[string]string{"OPENFAAS_CONFIG": dir}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://127.1.2.3": true, "http://[::1]:8080": true,
		"http://localhost:8080": true, "http://10.0.0.1:8080": false, "https://example.com": false, "::bad": false,
	} {
		if got := isLoopback(u); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", u, got, want)
		}
	}
}

// fakeGateway records requests and answers from a table.
type fakeGateway struct {
	t        *testing.T
	requests []string
	bodies   []string
	answer   func(r *http.Request) (int, string)
}

func (f *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, _ := r.BasicAuth()
	if user != "admin" || pass != "pw" {
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	}
	b, _ := io.ReadAll(r.Body)
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.bodies = append(f.bodies, string(b))
	code, body := f.answer(r)
	w.WriteHeader(code)
	io.WriteString(w, body)
}

func TestClient(t *testing.T) {
	fg := &fakeGateway{t: t, answer: func(r *http.Request) (int, string) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/system/function/hello":
			return 200, `{"name":"hello","image":"img:1","envVars":{"A":"b"}}`
		case r.Method == http.MethodGet:
			return 404, "function \"nope\" not found in namespace \"openfaas-fn\"\n"
		case r.Method == http.MethodPut:
			return 400, "\n  invalid memory quantity \"lots\"  \nsecond line\n"
		case r.Method == http.MethodPost, r.Method == http.MethodDelete:
			return 202, ""
		}
		return 500, "unexpected"
	}}
	srv := httptest.NewServer(fg)
	defer srv.Close()
	ctx := context.Background()
	c := NewClient(srv.URL, &Credentials{User: "admin", Password: "pw"})

	st, err := c.Function(ctx, "hello", "iot")
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "hello" || st.Image != "img:1" || st.EnvVars["A"] != "b" {
		t.Errorf("Function = %+v", st)
	}

	_, err = c.Function(ctx, "nope", "")
	if !IsNotFound(err) {
		t.Errorf("missing function: %v, want a 404", err)
	}
	if want := `GET /system/function/nope: 404 Not Found: function "nope" not found in namespace "openfaas-fn"`; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}

	dep := types.FunctionDeployment{Service: "hello", Image: "img:2", Namespace: "iot"}
	err = c.Update(ctx, dep)
	if want := `PUT /system/functions: 400 Bad Request: invalid memory quantity "lots"`; err == nil || err.Error() != want {
		t.Errorf("Update error = %v, want %q", err, want)
	}
	if IsNotFound(err) {
		t.Error("a 400 is not a 404")
	}
	if err := c.Deploy(ctx, dep); err != nil {
		t.Errorf("Deploy: %v", err)
	}
	if err := c.Delete(ctx, "hello", "iot"); err != nil {
		t.Errorf("Delete: %v", err)
	}

	wantReqs := []string{
		"GET /system/function/hello?namespace=iot",
		"GET /system/function/nope",
		"PUT /system/functions",
		"POST /system/functions",
		"DELETE /system/functions",
	}
	if !reflect.DeepEqual(fg.requests, wantReqs) {
		t.Errorf("requests = %q, want %q", fg.requests, wantReqs)
	}
	var got types.FunctionDeployment
	if err := json.Unmarshal([]byte(fg.bodies[3]), &got); err != nil || !reflect.DeepEqual(got, dep) {
		t.Errorf("POST body = %s (%v)", fg.bodies[3], err)
	}
	var del types.DeleteFunctionRequest
	if err := json.Unmarshal([]byte(fg.bodies[4]), &del); err != nil || del.FunctionName != "hello" || del.Namespace != "iot" {
		t.Errorf("DELETE body = %s (%v)", fg.bodies[4], err)
	}
}

func TestClientAuthErrors(t *testing.T) {
	srv := httptest.NewServer(&fakeGateway{t: t, answer: func(*http.Request) (int, string) { return 200, "{}" }})
	defer srv.Close()
	ctx := context.Background()

	err := NewClient(srv.URL, nil).Deploy(ctx, types.FunctionDeployment{Service: "x"})
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized: invalid credentials (no credentials found for "+srv.URL) {
		t.Errorf("no credentials: %v", err)
	}
	err = NewClient(srv.URL, &Credentials{User: "admin", Password: "wrong", Source: "/some/dir"}).Deploy(ctx, types.FunctionDeployment{})
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized: invalid credentials (credentials from /some/dir)") {
		t.Errorf("wrong credentials: %v", err)
	}
}

func TestClientBearerAndTransportErrors(t *testing.T) {
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.Write([]byte("not json"))
	}))
	c := NewClient(srv.URL, &Credentials{Token: "tok"})
	_, err := c.Function(context.Background(), "x", "")
	if auth != "Bearer tok" {
		t.Errorf("Authorization = %q", auth)
	}
	if err == nil || !strings.Contains(err.Error(), "malformed answer") {
		t.Errorf("bad JSON: %v", err)
	}
	srv.Close()
	if err := c.Deploy(context.Background(), types.FunctionDeployment{}); err == nil || !strings.HasPrefix(err.Error(), "POST "+srv.URL+"/system/functions: ") {
		t.Errorf("closed server: %v", err)
	}
}
