package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/stack"
)

// runCLI runs the faas-criu command line with args and returns what it
// wrote.
func runCLI(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	root := NewRoot(&out, &errb)
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}

// stackDir writes a stack file with functions a, b and ab in a new
// directory and returns the file.
func stackDir(t *testing.T) string {
	t.Helper()
	return writeStack(t, `version: 1.0
provider: {name: openfaas}
functions:
  a: {image: img/a:1, lang: dockerfile, handler: ., environment: {V: "1"}, labels: {x: "1"}}
  b: {image: img/b:1, lang: dockerfile, handler: .}
  ab: {image: img/ab:1, lang: dockerfile, handler: ., secrets: [s1]}
`)
}

func TestBuildFlags(t *testing.T) {
	file := stackDir(t)
	for _, tt := range []struct {
		name    string
		args    []string
		check   func(t *testing.T, o *buildOptions, fnNames []string)
		wantErr string
	}{
		{"short forms", []string{"-f", file, "-b", "A=1", "--build-arg", "B=x=y", "--parallel", "3"}, func(t *testing.T, o *buildOptions, fns []string) {
			bo, err := o.options(mustLoad(t, o.stack), nil, os.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"A": "1", "B": "x=y"}; !reflect.DeepEqual(bo.BuildArgs, want) || bo.Parallel != 3 {
				t.Errorf("options = %+v", bo)
			}
			if !reflect.DeepEqual(fns, []string{"a", "b", "ab"}) {
				t.Errorf("functions = %v", fns)
			}
		}, ""},
		{"booleans and template dir", []string{"--yaml", file, "--pull", "--no-cache", "--verbose", "--shrinkwrap", "--template-dir", "/t"}, func(t *testing.T, o *buildOptions, _ []string) {
			bo, err := o.options(mustLoad(t, o.stack), nil, os.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			if !bo.Pull || !bo.NoCache || !bo.Verbose || !bo.Shrinkwrap || bo.TemplateDir != "/t" || bo.Parallel != 1 || bo.Progress != nil {
				t.Errorf("options = %+v", bo)
			}
		}, ""},
		// Booleans are read as serve's settings are (package config).
		{"booleans the OpenFaaS way", []string{"-f", file, "--pull=yes", "--no-cache=1", "--verbose=TRUE", "--shrinkwrap=on"}, func(t *testing.T, o *buildOptions, _ []string) {
			if !o.pull || !o.noCache || !o.verbose || !o.shrinkwrap {
				t.Errorf("options = %+v", o)
			}
		}, ""},
		{"boolean not understood", []string{"-f", file, "--pull=maybe"}, nil, `"maybe" for "--pull"`},
		{"filter", []string{"-f", file, "--filter", "a*"}, func(t *testing.T, _ *buildOptions, fns []string) {
			if !reflect.DeepEqual(fns, []string{"a", "ab"}) {
				t.Errorf("functions = %v", fns)
			}
		}, ""},
		{"regex", []string{"-f", file, "--regex", "^.b$"}, func(t *testing.T, _ *buildOptions, fns []string) {
			if !reflect.DeepEqual(fns, []string{"ab"}) {
				t.Errorf("functions = %v", fns)
			}
		}, ""},
		{"regex matching none", []string{"-f", file, "--regex", "^z"}, nil, `no function matches --regex "^z"`},
		{"bad regex", []string{"-f", file, "--regex", "("}, nil, `--regex "("`},
		{"bad build arg", []string{"-f", file, "-b", "NOEQUALS"}, nil, `--build-arg "NOEQUALS": want KEY=VALUE`},
		{"parallel 0", []string{"-f", file, "--parallel", "0"}, nil, "--parallel 0: want 1 or more"},
		{"bad tag format", []string{"-f", file, "--tag", "nightly"}, nil, `--tag "nightly"`},
		{"-v is not a flag", []string{"-f", file, "-v"}, nil, "unknown shorthand flag: 'v'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := &buildOptions{}
			cmd := newBuildCmd(o)
			err := cmd.ParseFlags(tt.args)
			var fns []string
			if err == nil {
				var st *stack.Stack
				var sel []*stack.Function
				if st, sel, err = o.stack.load(io.Discard); err == nil {
					for _, f := range sel {
						fns = append(fns, f.Name)
					}
					_, err = o.options(st, sel, os.Stdout)
				}
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o, fns)
		})
	}
}

func mustLoad(t *testing.T, o stackOptions) *stack.Stack {
	t.Helper()
	s, _, err := o.load(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDeployFlags(t *testing.T) {
	file := stackDir(t)
	for _, tt := range []struct {
		name    string
		args    []string
		want    map[string]types.FunctionDeployment // by name: the fields checked
		wantErr string
	}{
		{"stack as written", []string{"-f", file, "--filter", "a"}, map[string]types.FunctionDeployment{
			"a": {Image: "img/a:1", EnvVars: map[string]string{"V": "1"}, Labels: &map[string]string{"x": "1"}},
		}, ""},
		{"short forms override every function", []string{"-f", file, "--regex", "^a", "-e", "V=2", "-e", "W=3", "-l", "x=9", "--annotation", "k=v", "--secret", "s1", "--secret", "s2", "-n", "dev"},
			map[string]types.FunctionDeployment{
				"a": {Image: "img/a:1", Namespace: "dev", EnvVars: map[string]string{"V": "2", "W": "3"}, Labels: &map[string]string{"x": "9"},
					Annotations: &map[string]string{"k": "v"}, Secrets: []string{"s1", "s2"}},
				"ab": {Image: "img/ab:1", Namespace: "dev", EnvVars: map[string]string{"V": "2", "W": "3"}, Labels: &map[string]string{"x": "9"},
					Annotations: &map[string]string{"k": "v"}, Secrets: []string{"s1", "s2"}},
			}, ""},
		{"bad env", []string{"-f", file, "-e", "=x"}, nil, `--env "=x": want KEY=VALUE`},
		{"bad label", []string{"-f", file, "--label", "x"}, nil, `--label "x": want KEY=VALUE`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := &deployOptions{}
			if err := newDeployCmd(o).ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			_, fns, err := o.stack.load(io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			deps, err := o.deployments(fns)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(deps) != len(tt.want) {
				t.Fatalf("%d deployments, want %d", len(deps), len(tt.want))
			}
			for _, d := range deps {
				w := tt.want[d.Service]
				got := types.FunctionDeployment{Image: d.Image, Namespace: d.Namespace, EnvVars: d.EnvVars, Labels: d.Labels, Annotations: d.Annotations, Secrets: d.Secrets}
				if !reflect.DeepEqual(got, w) {
					t.Errorf("%s = %+v\nwant %+v", d.Service, got, w)
				}
			}
		})
	}
}

func TestGatewayFlags(t *testing.T) {
	t.Setenv("OPENFAAS_URL", "http://from-env:8080")
	t.Setenv("OPENFAAS_CONFIG", t.TempDir())
	t.Setenv("secret_mount_path", t.TempDir())
	for _, tt := range []struct {
		args    []string
		stackGW string // the stack's provider.gateway
		wantURL string
		wantErr string
	}{
		{nil, "", "http://from-env:8080", ""},
		// faas-cli's order: the flag, the stack, then $OPENFAAS_URL; no
		// scheme is http.
		{nil, "from-stack:3", "http://from-stack:3", ""},
		{[]string{"-g", "flag:4"}, "http://from-stack:3", "http://flag:4", ""},
		{[]string{"-g", "http://short:1/"}, "", "http://short:1", ""},
		{[]string{"--gateway", "https://long:2", "--tls-no-verify"}, "", "https://long:2", ""},
		{[]string{"-g", "ftp://x"}, "", "", `invalid gateway URL "ftp://x"`},
	} {
		o := &migrateOptions{}
		if err := newMigrateCmd(o).ParseFlags(tt.args); err != nil {
			t.Fatal(err)
		}
		c, err := o.gw.client(tt.stackGW)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: error = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || c.URL != tt.wantURL {
			t.Errorf("%v: client %v, %v; want %s", tt.args, c, err, tt.wantURL)
		}
	}
}

func TestArgumentErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "fn"}, "--to is required"},
		{[]string{"migrate", "a", "b", "--to", "http://x:1"}, "want one function name, got 2"},
		{[]string{"backups"}, "want one function name, got 0"},
		{[]string{"deploy", "extra"}, `unexpected argument "extra"`},
		{[]string{"build", "--nope"}, "unknown flag: --nope"},
		{[]string{"--log-format", "xml", "version"}, `--log-format "xml"`},
		{[]string{"nosuch"}, `unknown command "nosuch"`},
		{[]string{"migrate", "fn", "--to", "http://x:1", "--keep=maybe"}, `"maybe" for "--keep"`},
		{[]string{"migrate", "fn", "--to", "http://x:1", "--replace=sometimes"}, `"sometimes" for "--replace"`},
	} {
		_, _, err := runCLI(tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error = %v, want %q", tt.args, err, tt.want)
		}
	}
	// Command-line mistakes exit with 2, failures with 1.
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"build", "--nope"}, 2}, {[]string{"nosuch"}, 2}, {[]string{"build", "--pull=maybe"}, 2}, {[]string{}, 2}, {[]string{"migrate", "fn"}, 2},
		{[]string{"deploy", "-f", "/nonexistent/stack.yml"}, 1},
	} {
		_, _, err := runCLI(tt.args...)
		if got := exitStatus(err); err == nil || got != tt.want {
			t.Errorf("%v: exit status %d (%v), want %d", tt.args, got, err, tt.want)
		}
	}
}

func TestServeLogFlags(t *testing.T) {
	t.Setenv("log_level", "warn")
	for _, tt := range []struct {
		args     []string
		want     logOptions
		wantRest []string
	}{
		{[]string{"--port", "1"}, logOptions{"text", "warn"}, []string{"--port", "1"}},
		{[]string{"--log-format", "json", "--port", "1", "--log-level=debug"}, logOptions{"json", "debug"}, []string{"--port", "1"}},
		{[]string{"-log-format=json", "--autoscale=false"}, logOptions{"json", "warn"}, []string{"--autoscale=false"}},
		{[]string{"--", "--log-format", "json"}, logOptions{"text", "warn"}, []string{"--", "--log-format", "json"}},
	} {
		lo, rest, err := logFlags(tt.args)
		if err != nil || lo != tt.want || !reflect.DeepEqual(rest, tt.wantRest) {
			t.Errorf("logFlags(%v) = %+v %v %v, want %+v %v", tt.args, lo, rest, err, tt.want, tt.wantRest)
		}
	}
	if _, _, err := logFlags([]string{"--log-level"}); err == nil {
		t.Error("--log-level without a value was accepted")
	}
}

// TestVersionShowsServer: version reports the server from either shape of
// /system/info: faas-criu's provider shape (asked with ?shape=provider) and
// the gateway's, whose "provider" is an object (a gateway in front).
func TestVersionShowsServer(t *testing.T) {
	provider := map[string]any{"provider": "faas-criu", "orchestration": "docker",
		"version": map[string]string{"release": "1.2.3", "sha": "abc"}}
	for _, tt := range []struct {
		name  string
		shape func(r *http.Request) any
	}{
		{"faas-criu", func(r *http.Request) any {
			if r.URL.Query().Get("shape") != "provider" {
				return map[string]any{"provider": provider, "version": map[string]string{"release": "gw"}, "arch": "x86_64"}
			}
			return map[string]any{"provider": "faas-criu", "orchestration": "docker",
				"version": map[string]string{"release": "1.2.3", "sha": "abc"}, "criu": map[string]any{"available": true}}
		}},
		{"a gateway in front", func(*http.Request) any {
			return map[string]any{"provider": provider, "version": map[string]string{"release": "0.27.0"}, "arch": "x86_64"}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/system/info" {
					http.NotFound(w, r)
					return
				}
				json.NewEncoder(w).Encode(tt.shape(r))
			}))
			defer srv.Close()
			t.Setenv("OPENFAAS_CONFIG", t.TempDir())
			Version, Commit = "9.9.9", "def"
			out, _, err := runCLI("version", "-g", srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			want := "faas-criu 9.9.9 (commit def)\nserver " + srv.URL + ": faas-criu 1.2.3 (commit abc, orchestration docker)\n"
			if out != want {
				t.Errorf("version =\n%s\nwant\n%s", out, want)
			}
			out, _, err = runCLI("version", "-g", srv.URL, "--json")
			var v versionInfo
			if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Server == nil || v.Server.Version != "1.2.3" || v.Client.Version != "9.9.9" {
				t.Errorf("version --json = %s (%v)", out, err)
			}
			// A server that does not answer is reported, not an error.
			srv.Close()
			out, _, err = runCLI("version", "-g", srv.URL)
			if err != nil || !strings.Contains(out, "server: not reached") {
				t.Errorf("unreachable server: %q %v", out, err)
			}
		})
	}
}

func TestBackupsJSON(t *testing.T) {
	taken := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/system/backups/fn":
			json.NewEncoder(w).Encode([]api.Backup{{Name: "fn-0-1", Replica: 0, TakenAt: taken, Bytes: 2048}})
		case "/system/backups/none":
			w.Write([]byte("[]"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("OPENFAAS_CONFIG", t.TempDir())
	out, _, err := runCLI("backups", "fn", "-g", srv.URL, "--json")
	var list []api.Backup
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Name != "fn-0-1" || !list[0].TakenAt.Equal(taken) {
		t.Errorf("backups --json = %s (%v)", out, err)
	}
	out, _, err = runCLI("backups", "none", "-g", srv.URL, "--json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("no backups, --json = %q (%v)", out, err)
	}
	out, _, err = runCLI("backups", "fn", "-g", srv.URL)
	if err != nil || !strings.Contains(out, "BACKUP") || !strings.Contains(out, "fn-0-1") || !strings.Contains(out, "2.0 KiB") {
		t.Errorf("backups = %q (%v)", out, err)
	}
}

func TestMigrateProgressOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	m := &migrateProgress{w: &buf}
	for _, p := range []api.Progress{
		{Step: "connect"}, {Step: "connect", Done: true},
		{Step: "checkpoint"}, {Step: "checkpoint"}, {Step: "checkpoint"}, // repeated while waiting
		{Step: "checkpoint", Done: true, Note: "1.2 MiB"},
		{Step: "transfer", Bytes: 1 << 20, Rate: 1 << 20}, {Step: "transfer", Bytes: 1 << 20, Rate: 1 << 19}, // only the rate moved
		{Step: "transfer", Bytes: 2 << 20, Rate: 1 << 20},
		{Step: "transfer", Done: true, Bytes: 2 << 20, Rate: 1 << 20},
	} {
		m.show(p)
	}
	want := `  connect    ...
  connect    done
  checkpoint ...
  checkpoint done: 1.2 MiB
  transfer   1.0 MiB sent, 1.0 MiB/s
  transfer   2.0 MiB sent, 1.0 MiB/s
  transfer   done: 2.0 MiB sent at 1.0 MiB/s
`
	if buf.String() != want {
		t.Errorf("progress =\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestPhaseLines(t *testing.T) {
	var buf bytes.Buffer
	p := &phaseLines{w: &buf}
	p.Start("making base image x")
	for _, ph := range []string{"Retrieving InRelease", "Retrieving InRelease", "Validating Packages"} {
		p.Phase(ph)
	}
	p.Done(nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || lines[0] != "making base image x" || !strings.HasSuffix(lines[1], "s Retrieving InRelease") || !strings.HasSuffix(lines[2], "s Validating Packages") {
		t.Errorf("lines = %q", lines)
	}
}

// TestSpinner draws the step and its phase, then clears the line.
func TestSpinner(t *testing.T) {
	var buf lockedBuffer
	s := &spinner{w: &buf}
	s.Start("making base image x")
	s.Phase("Retrieving InRelease")
	time.Sleep(150 * time.Millisecond) // one spinner tick
	s.Done(nil)
	out := buf.String()
	if !strings.Contains(out, "making base image x") || !strings.Contains(out, "making base image x: Retrieving InRelease") {
		t.Errorf("spinner output = %q", out)
	}
}

// lockedBuffer is a bytes.Buffer the spinner's goroutine may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMigrateProgressOnTerminal draws a bar per step and leaves a line
// for each finished step.
func TestMigrateProgressOnTerminal(t *testing.T) {
	var buf lockedBuffer
	m := &migrateProgress{w: &buf, tty: true}
	for _, p := range []api.Progress{
		{Step: "connect"}, {Step: "connect", Done: true},
		{Step: "transfer", Bytes: 3 << 20, Rate: 1 << 20},
		{Step: "transfer", Done: true, Bytes: 4 << 20, Rate: 1 << 20},
		{Step: "finish"},
	} {
		m.show(p)
	}
	m.finishBar()
	out := buf.String()
	for _, want := range []string{"connect    done\n", "3.0 MiB", "transfer   done: 4.0 MiB sent at 1.0 MiB/s\n", "finish"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in %q", want, out)
		}
	}
}
