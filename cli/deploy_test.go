package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/openfaas/faas-provider/types"
)

// fakeProvider keeps functions in memory and answers the /system API like
// faas-criu serve, with basic auth; fail makes the first PUT or POST that
// would change a function answer a chosen status.
type fakeProvider struct {
	mu    sync.Mutex
	fns   map[string]types.FunctionDeployment
	fail  map[string]int // function → status for its PUT/POST
	calls []string
}

func newFakeProvider(t *testing.T) (*fakeProvider, string) {
	fp := &fakeProvider{fns: map[string]types.FunctionDeployment{}, fail: map[string]int{}}
	srv := httptest.NewServer(fp)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "basic-auth-user"), []byte("admin"), 0o600)
	os.WriteFile(filepath.Join(dir, "basic-auth-password"), []byte("pw"), 0o600)
	t.Setenv("OPENFAAS_URL", srv.URL)
	t.Setenv("secret_mount_path", dir)
	t.Setenv("OPENFAAS_CONFIG", t.TempDir())
	return fp, srv.URL
}

func (fp *fakeProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u, p, _ := r.BasicAuth(); u != "admin" || p != "pw" {
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	var dep types.FunctionDeployment
	var del types.DeleteFunctionRequest
	switch r.Method {
	case http.MethodGet:
		name := strings.TrimPrefix(r.URL.Path, "/system/function/")
		fp.calls = append(fp.calls, "GET "+name)
		d, ok := fp.fns[name]
		if !ok {
			http.Error(w, fmt.Sprintf("function %q not found", name), http.StatusNotFound)
			return
		}
		ann := map[string]string{"com.openfaas.criu.state": "hibernated"}
		if d.Annotations != nil {
			for k, v := range *d.Annotations {
				ann[k] = v
			}
		}
		json.NewEncoder(w).Encode(types.FunctionStatus{
			Name: d.Service, Image: d.Image, Namespace: "openfaas-fn", EnvVars: d.EnvVars,
			Labels: d.Labels, Annotations: &ann, Limits: d.Limits, Replicas: 1, AvailableReplicas: 1,
		})
		return
	case http.MethodDelete:
		json.NewDecoder(r.Body).Decode(&del)
		fp.calls = append(fp.calls, "DELETE "+del.FunctionName)
		if _, ok := fp.fns[del.FunctionName]; !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		delete(fp.fns, del.FunctionName)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	json.NewDecoder(r.Body).Decode(&dep)
	fp.calls = append(fp.calls, r.Method+" "+dep.Service)
	_, exists := fp.fns[dep.Service]
	if code := fp.fail[dep.Service]; code != 0 && (exists || r.Method == http.MethodPost) {
		delete(fp.fail, dep.Service) // once: a rollback's request succeeds
		if code >= 500 && r.Method == http.MethodPut {
			fp.fns[dep.Service] = dep // half-applied before failing
		}
		http.Error(w, "image \""+dep.Image+"\" is not present\nsecond line", code)
		return
	}
	switch {
	case r.Method == http.MethodPut && !exists:
		http.Error(w, "not found", http.StatusNotFound)
	case r.Method == http.MethodPost && exists:
		http.Error(w, "exists", http.StatusConflict)
	default:
		fp.fns[dep.Service] = dep
		w.WriteHeader(http.StatusAccepted)
	}
}

func writeStack(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stack.yml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const threeFunctions = `version: 1.0
provider: {name: openfaas}
functions:
  a:
    image: img/a:2
    environment: {V: "2"}
  b:
    image: img/b:1
  c:
    image: img/c:1
`

func TestDeployCreatesAndUpdates(t *testing.T) {
	fp, _ := newFakeProvider(t)
	fp.fns["a"] = types.FunctionDeployment{Service: "a", Image: "img/a:1"}
	if err := runDeploy([]string{"-f", writeStack(t, threeFunctions)}); err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{"GET a", "PUT a", "GET b", "PUT b", "POST b", "GET c", "PUT c", "POST c"}
	if !reflect.DeepEqual(fp.calls, wantCalls) {
		t.Errorf("calls = %v, want %v", fp.calls, wantCalls)
	}
	if fp.fns["a"].Image != "img/a:2" || fp.fns["a"].EnvVars["V"] != "2" || fp.fns["b"].Image != "img/b:1" || len(fp.fns) != 3 {
		t.Errorf("functions = %+v", fp.fns)
	}
}

func TestDeployRollsBack(t *testing.T) {
	prevA := types.FunctionDeployment{
		Service: "a", Image: "img/a:1", Namespace: "openfaas-fn",
		EnvVars:     map[string]string{"V": "1"},
		Annotations: &map[string]string{"mine": "kept"},
	}
	for _, tt := range []struct {
		name      string
		failCode  int
		existingC bool
		wantErr   string
		wantCalls []string
	}{
		{"refused new function", 400, false,
			`deploy c: POST /system/functions: 400 Bad Request: image "img/c:1" is not present; rolled back this run's changes`,
			[]string{"GET a", "PUT a", "GET b", "PUT b", "POST b", "GET c", "PUT c", "POST c", "DELETE b", "PUT a"}},
		{"server error on a new function: it is removed if it exists", 500, false,
			`deploy c: POST /system/functions: 500 Internal Server Error`,
			[]string{"GET a", "PUT a", "GET b", "PUT b", "POST b", "GET c", "PUT c", "POST c", "DELETE c", "DELETE b", "PUT a"}},
		{"refused update of an existing function: it is left alone", 400, true,
			`deploy c: PUT /system/functions: 400 Bad Request`,
			[]string{"GET a", "PUT a", "GET b", "PUT b", "POST b", "GET c", "PUT c", "DELETE b", "PUT a"}},
		{"server error updating an existing function: it is restored", 500, true,
			`deploy c: PUT /system/functions: 500 Internal Server Error`,
			[]string{"GET a", "PUT a", "GET b", "PUT b", "POST b", "GET c", "PUT c", "PUT c", "DELETE b", "PUT a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fp, _ := newFakeProvider(t)
			fp.fns["a"] = prevA
			prevC := types.FunctionDeployment{Service: "c", Image: "img/c:0", Namespace: "openfaas-fn"}
			if tt.existingC {
				fp.fns["c"] = prevC
			}
			fp.fail["c"] = tt.failCode
			err := runDeploy([]string{"-f", writeStack(t, threeFunctions)})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "second line") {
				t.Errorf("error holds more than the server's first line: %v", err)
			}
			if !reflect.DeepEqual(fp.calls, tt.wantCalls) {
				t.Errorf("calls =\n %v\nwant\n %v", fp.calls, tt.wantCalls)
			}
			// a is back as it was, without the status annotations; b is gone.
			if got := fp.fns["a"]; !reflect.DeepEqual(got, prevA) {
				t.Errorf("a = %+v, want %+v", got, prevA)
			}
			if _, ok := fp.fns["b"]; ok {
				t.Error("b, new in this run, was not removed")
			}
			c, ok := fp.fns["c"]
			if tt.existingC != ok || (ok && !reflect.DeepEqual(c, prevC)) {
				t.Errorf("c = %+v (present %v), want %+v (present %v)", c, ok, prevC, tt.existingC)
			}
		})
	}
}

func TestDeployChecksEverythingFirst(t *testing.T) {
	fp, _ := newFakeProvider(t)
	for _, tt := range []struct {
		name, stack string
		args        []string
		want        string
	}{
		{"bad memory in the last function", threeFunctions + "    limits: {memory: 9e18Gi}\n", nil,
			`function "c": field "limits.memory": memory quantity "9e18Gi" is too large`},
		{"missing environment file", threeFunctions + "    environment_file: [nope.yml]\n", nil,
			`function "c": field "environment_file[0]": open `},
		{"bad gateway flag", threeFunctions, []string{"--gateway", "ftp://x"}, `invalid gateway URL "ftp://x"`},
		{"filter matching nothing", threeFunctions, []string{"--filter", "z*"}, `no function matches --filter "z*"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := runDeploy(append([]string{"-f", writeStack(t, tt.stack)}, tt.args...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
	if len(fp.calls) != 0 {
		t.Errorf("requests were made: %v", fp.calls)
	}
}

func TestDeployFilterAndNamespace(t *testing.T) {
	fp, _ := newFakeProvider(t)
	var namespaces []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			var dep types.FunctionDeployment
			json.NewDecoder(r.Body).Decode(&dep)
			namespaces = append(namespaces, dep.Service+"@"+dep.Namespace)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		if r.Method == http.MethodGet {
			namespaces = append(namespaces, "GET?"+r.URL.RawQuery)
		}
		http.Error(w, "not found", http.StatusNotFound)
	}))
	defer srv.Close()
	err := runDeploy([]string{"-f", writeStack(t, threeFunctions), "--filter", "[ab]", "--gateway", srv.URL, "--namespace", "dev"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"GET?namespace=dev", "a@dev", "GET?namespace=dev", "b@dev"}
	if !reflect.DeepEqual(namespaces, want) {
		t.Errorf("requests = %v, want %v", namespaces, want)
	}
	if len(fp.calls) != 0 {
		t.Error("--gateway did not win over $OPENFAAS_URL")
	}
}

// runDeploy runs "faas-criu deploy ARGS" as a user would.
func runDeploy(args []string) error {
	_, _, err := runCLI(append([]string{"deploy"}, args...)...)
	return err
}

// TestUpDeploysNothingWhenBuildFails: up checks and builds first; a build
// that fails leaves the provider untouched.
func TestUpDeploysNothingWhenBuildFails(t *testing.T) {
	fp, _ := newFakeProvider(t)
	file := writeStack(t, "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  a: {image: img/a:1, lang: dockerfile, handler: ./missing}\n")
	_, _, err := runCLI("up", "-f", file)
	if err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("error = %v", err)
	}
	_, _, err = runCLI("up", "-f", file, "-e", "bad")
	if err == nil || !strings.Contains(err.Error(), `--env "bad"`) {
		t.Fatalf("bad --env: error = %v", err)
	}
	if len(fp.calls) != 0 {
		t.Errorf("requests were made: %v", fp.calls)
	}
}

// TestDeployGatewayOrder: the gateway is chosen in faas-cli's order (flag,
// the stack's provider.gateway, $OPENFAAS_URL), and $OPENFAAS_URL and
// provider.gateway may omit the scheme, as faas-cli allows.
func TestDeployGatewayOrder(t *testing.T) {
	fp, url := newFakeProvider(t)
	hostPort := strings.TrimPrefix(url, "http://")
	withGateway := func(gw string) string {
		return writeStack(t, strings.Replace(threeFunctions, "provider: {name: openfaas}", "provider: {name: openfaas, gateway: "+gw+"}", 1))
	}

	// The stack's gateway wins over $OPENFAAS_URL (which leads nowhere).
	t.Setenv("OPENFAAS_URL", "http://127.0.0.1:1")
	if err := runDeploy([]string{"-f", withGateway(url), "--filter", "a"}); err != nil {
		t.Fatalf("stack gateway over $OPENFAAS_URL: %v", err)
	}
	// Without a scheme in the stack.
	if err := runDeploy([]string{"-f", withGateway(hostPort), "--filter", "b"}); err != nil {
		t.Fatalf("stack gateway without a scheme: %v", err)
	}
	// $OPENFAAS_URL without a scheme, when the stack names none.
	t.Setenv("OPENFAAS_URL", hostPort)
	if err := runDeploy([]string{"-f", writeStack(t, threeFunctions), "--filter", "c"}); err != nil {
		t.Fatalf("$OPENFAAS_URL without a scheme: %v", err)
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	for _, name := range []string{"a", "b", "c"} {
		if _, ok := fp.fns[name]; !ok {
			t.Errorf("function %s was not deployed to the chosen gateway", name)
		}
	}
}

// TestStackWarnings: deploy and build name what the stack holds that
// faas-criu does not use, one WARNING line each on stderr, and go on.
func TestStackWarnings(t *testing.T) {
	fp, _ := newFakeProvider(t)
	file := writeStack(t, "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  w:\n    image: img/w:1\n    lang: dockerfile\n    handler: .\n    platforms: linux/amd64\n")
	os.WriteFile(filepath.Join(filepath.Dir(file), "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	want := `WARNING: ` + file + `: function "w": field "platforms": not used by faas-criu`
	for _, args := range [][]string{{"deploy", "-f", file}, {"build", "-f", file, "--shrinkwrap"}} {
		_, stderr, err := runCLI(args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.Contains(stderr, want) {
			t.Errorf("%v: stderr %q, want %q", args, stderr, want)
		}
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if _, ok := fp.fns["w"]; !ok {
		t.Error("w was not deployed")
	}
}
