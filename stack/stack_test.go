package stack

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// writeFiles writes name → content under a new temp dir and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const fullStack = `version: 1.0
provider:
  name: openfaas
  gateway: ${GW:-http://127.0.0.1:8080}
  network: func_functions
configuration:
  templates:
    - name: go-http
      source: https://example.com/templates.git
functions:
  sensor:
    lang: go-http
    handler: ./sensor
    image: faas-criu/sensor:${TAG}
    fprocess: ./handler --fast
    namespace: iot
    environment:
      WINDOW: 100
      DEBUG: true
      FROM_FILE: stack
      EMPTY:
    environment_file:
      - env/common.yml
      - env/override.yml
    secrets: [api-key, db.password]
    labels:
      com.openfaas.scale.min: "1"
    annotations:
      topic: readings
    limits:
      memory: 128Mi
      cpu: 500m
    requests:
      memory: 64Mi
      cpu: "0.1"
    readonly_root_filesystem: true
    constraints:
      - node.platform.os == linux
    build_args:
      GO_IMAGE: golang:1.24
    build_options: [dev]
    skip_build: false
  hello:
    lang: Dockerfile
    handler: ./hello
    image: faas-criu/hello:latest
`

func TestLoadEveryKey(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"stack.yml":        fullStack,
		"env/common.yml":   "environment:\n  FROM_FILE: common\n  COMMON: c\n  OVERRIDDEN: common\n",
		"env/override.yml": "environment:\n  OVERRIDDEN: override\n  PORT: 8080\n",
	})
	s, err := Load(filepath.Join(dir, "stack.yml"), envOf(map[string]string{"TAG": "v2"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "1.0" || s.Dir != dir {
		t.Errorf("version %q dir %q", s.Version, s.Dir)
	}
	wantProvider := Provider{Name: "openfaas", Gateway: "http://127.0.0.1:8080", Network: "func_functions"}
	if s.Provider != wantProvider {
		t.Errorf("provider = %+v, want %+v", s.Provider, wantProvider)
	}
	if want := []TemplateSource{{Name: "go-http", Source: "https://example.com/templates.git"}}; !reflect.DeepEqual(s.Configuration.Templates, want) {
		t.Errorf("templates = %+v", s.Configuration.Templates)
	}
	if len(s.Functions) != 2 || s.Functions[0].Name != "sensor" || s.Functions[1].Name != "hello" {
		t.Fatalf("functions not in file order: %+v", s.Functions)
	}
	f := s.Function("sensor")
	if f.Line != 11 {
		t.Errorf("line = %d, want 11", f.Line)
	}
	checks := []struct {
		field    string
		got, exp any
	}{
		{"lang", f.Lang, "go-http"},
		{"handler", f.Handler, "./sensor"},
		{"image", f.Image, "faas-criu/sensor:v2"},
		{"fprocess", f.FProcess, "./handler --fast"},
		{"namespace", f.Namespace, "iot"},
		{"environment", f.Environment, map[string]string{"WINDOW": "100", "DEBUG": "true", "FROM_FILE": "stack", "EMPTY": ""}},
		{"environment_file", f.EnvironmentFile, []string{"env/common.yml", "env/override.yml"}},
		{"secrets", f.Secrets, []string{"api-key", "db.password"}},
		{"labels", *f.Labels, map[string]string{"com.openfaas.scale.min": "1"}},
		{"annotations", *f.Annotations, map[string]string{"topic": "readings"}},
		{"limits", *f.Limits, Resources{Memory: "128Mi", CPU: "500m"}},
		{"requests", *f.Requests, Resources{Memory: "64Mi", CPU: "0.1"}},
		{"readonly_root_filesystem", f.ReadOnlyRootFilesystem, true},
		{"constraints", f.Constraints, []string{"node.platform.os == linux"}},
		{"build_args", f.BuildArgs, map[string]string{"GO_IMAGE": "golang:1.24"}},
		{"build_options", f.BuildOptions, []string{"dev"}},
		{"skip_build", f.SkipBuild, false},
		{"lang normalised", s.Function("hello").Lang, "dockerfile"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.exp) {
			t.Errorf("%s = %#v, want %#v", c.field, c.got, c.exp)
		}
	}

	deps, err := s.Deployments("")
	if err != nil {
		t.Fatal(err)
	}
	want := types.FunctionDeployment{
		Service:    "sensor",
		Image:      "faas-criu/sensor:v2",
		Namespace:  "iot",
		EnvProcess: "./handler --fast",
		EnvVars: map[string]string{
			"WINDOW": "100", "DEBUG": "true", "EMPTY": "", "PORT": "8080",
			"FROM_FILE":  "stack",    // environment beats the files
			"COMMON":     "c",        // from the first file
			"OVERRIDDEN": "override", // the later file beats the earlier
		},
		Constraints:            []string{"node.platform.os == linux"},
		Secrets:                []string{"api-key", "db.password"},
		Labels:                 &map[string]string{"com.openfaas.scale.min": "1"},
		Annotations:            &map[string]string{"topic": "readings"},
		Limits:                 &types.FunctionResources{Memory: "128Mi", CPU: "500m"},
		Requests:               &types.FunctionResources{Memory: "64Mi", CPU: "0.1"},
		ReadOnlyRootFilesystem: true,
	}
	if !reflect.DeepEqual(deps[0], want) {
		t.Errorf("deployment =\n%+v\nwant\n%+v", deps[0], want)
	}
	hello := types.FunctionDeployment{Service: "hello", Image: "faas-criu/hello:latest"}
	if !reflect.DeepEqual(deps[1], hello) {
		t.Errorf("minimal deployment = %+v, want %+v", deps[1], hello)
	}
	// The deployment shares nothing with the stack.
	(*deps[0].Labels)["x"] = "y"
	deps[0].EnvVars["x"] = "y"
	deps[0].Secrets[0] = "changed"
	if _, ok := (*f.Labels)["x"]; ok || f.Secrets[0] != "api-key" || f.EnvVars()["x"] != "" {
		t.Error("Deployment shares maps or slices with the stack")
	}
}

func TestSelect(t *testing.T) {
	s, err := Parse("stack.yml", []byte(`provider: {name: openfaas}
functions:
  b-fn: {image: b}
  a-fn: {image: a}
  other: {image: o}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	names := func(filter string) ([]string, error) {
		deps, err := s.Deployments(filter)
		var out []string
		for _, d := range deps {
			out = append(out, d.Service)
		}
		return out, err
	}
	for _, tt := range []struct {
		filter string
		want   []string
	}{
		{"", []string{"b-fn", "a-fn", "other"}},
		{"*-fn", []string{"b-fn", "a-fn"}},
		{"other", []string{"other"}},
		{"?-fn", []string{"b-fn", "a-fn"}},
	} {
		got, err := names(tt.filter)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("filter %q = %v, %v; want %v", tt.filter, got, err, tt.want)
		}
	}
	if _, err := names("nothing*"); err == nil || !strings.Contains(err.Error(), `no function matches --filter "nothing*"`) {
		t.Errorf("unmatched filter: %v", err)
	}
	if _, err := names("[x"); err == nil {
		t.Error("bad pattern: no error")
	}
}

func TestAliasesAndMerge(t *testing.T) {
	s, err := Parse("stack.yml", []byte(`provider: {name: faas}
functions:
  a:
    image: a
    environment: &env
      SHARED: "1"
      OTHER: x
  b:
    image: b
    environment:
      <<: *env
      OTHER: mine
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"SHARED": "1", "OTHER": "mine"}
	if got := s.Function("b").EnvVars(); !reflect.DeepEqual(got, want) {
		t.Errorf("merged environment = %v, want %v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n"
	tests := []struct {
		name string
		yaml string
		want string // the whole message
	}{
		{"template without name", head + "  a: {image: x}\nconfiguration:\n  templates:\n    - source: y\n",
			`stack.yml: field "configuration.templates[0].name": required (line 8)`},
		{"missing image", head + "  sensor:\n    lang: go-http\n",
			`stack.yml: function "sensor": field "image": required: every function needs an image (line 6)`},
		{"missing image, empty function", head + "  sensor:\n",
			`stack.yml: function "sensor": field "image": required: every function needs an image (line 5)`},
		{"bad image", head + "  sensor:\n    image: Sensor:latest\n",
			`stack.yml: function "sensor": field "image": invalid image reference "Sensor:latest": invalid reference format: repository name (library/Sensor) must be lowercase (line 6)`},
		{"bad function name", head + "  Sensor_1: {image: x}\n",
			`stack.yml: function "Sensor_1": invalid function name "Sensor_1": use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit (line 5)`},
		{"bad namespace", head + "  a:\n    image: x\n    namespace: Bad_NS\n",
			`stack.yml: function "a": field "namespace": invalid namespace "Bad_NS": use lower-case letters, digits and '-' (line 7)`},
		{"bad memory", head + "  a:\n    image: x\n    limits: {memory: lots}\n",
			`stack.yml: function "a": field "limits.memory": invalid memory quantity "lots" (examples: 128Mi, 1Gi, 500M) (line 7)`},
		{"bad cpu", head + "  a:\n    image: x\n    requests:\n      cpu: fast\n",
			`stack.yml: function "a": field "requests.cpu": invalid CPU quantity "fast" (examples: 500m, 1, 0.25) (line 8)`},
		{"bad secret", head + "  a:\n    image: x\n    secrets:\n      - ok\n      - ../etc\n",
			`stack.yml: function "a": field "secrets[1]": invalid secret name "../etc": use letters, digits, '-', '_' and '.', no path separators or ".." (line 9)`},
		{"bad env name", head + "  a:\n    image: x\n    environment:\n      \"A=B\": x\n",
			`stack.yml: function "a": field "environment": invalid variable name "A=B" (line 8)`},
		{"limits not a mapping", head + "  a:\n    image: x\n    limits: 5\n",
			`stack.yml: function "a": field "limits": expected a mapping, found "5" (line 7)`},
		{"environment is a list", head + "  a:\n    image: x\n    environment: [A=1]\n",
			`stack.yml: function "a": field "environment": expected a mapping, found a list (line 7)`},
		{"nested environment value", head + "  a:\n    image: x\n    environment:\n      A: {b: c}\n",
			`stack.yml: function "a": field "environment.A": expected a string, found a mapping (line 8)`},
		{"secrets is a string", head + "  a:\n    image: x\n    secrets: key\n",
			`stack.yml: function "a": field "secrets": expected a list, found "key" (line 7)`},
		{"list item not a string", head + "  a:\n    image: x\n    constraints:\n      - [x]\n",
			`stack.yml: function "a": field "constraints[0]": expected a string, found a list (line 8)`},
		{"bad bool", head + "  a:\n    image: x\n    readonly_root_filesystem: maybe\n",
			`stack.yml: function "a": field "readonly_root_filesystem": expected true or false, found "maybe" (line 7)`},
		{"duplicate key", head + "  a:\n    image: x\n    image: y\n",
			`stack.yml: function "a": field "image": duplicate key (line 7)`},
		{"image a mapping", head + "  a:\n    image: {x: y}\n",
			`stack.yml: function "a": field "image": expected a string, found a mapping (line 6)`},
		{"function not a mapping", head + "  a: [x]\n",
			`stack.yml: function "a": expected a mapping, found a list (line 5)`},
		{"bad version", "version: 2.0\nprovider: {name: openfaas}\nfunctions:\n  a: {image: x}\n",
			`stack.yml: field "version": version "2.0" is not supported: use 1.0 (line 1)`},
		{"bad provider", "provider:\n  name: kubernetes\nfunctions:\n  a: {image: x}\n",
			`stack.yml: field "provider.name": provider "kubernetes" is not supported: use openfaas (line 2)`},
		{"no provider", "functions:\n  a: {image: x}\n",
			`stack.yml: field "provider.name": required: set provider: {name: openfaas} (line 1)`},
		{"bad gateway", "provider:\n  name: openfaas\n  gateway: ftp://127.0.0.1:8080\nfunctions:\n  a: {image: x}\n",
			`stack.yml: field "provider.gateway": invalid gateway URL "ftp://127.0.0.1:8080": expected [http(s)://]host[:port] (line 3)`},
		{"no functions", "provider: {name: openfaas}\n",
			`stack.yml: field "functions": no functions defined (line 1)`},
		{"empty functions", head,
			`stack.yml: field "functions": no functions defined (line 1)`},
		{"functions a list", "provider: {name: openfaas}\nfunctions:\n  - a\n",
			`stack.yml: field "functions": expected a mapping, found a list (line 3)`},
		{"root not a mapping", "- a\n- b\n",
			`stack.yml: expected a mapping, found a list (line 1)`},
		{"empty file", "",
			`stack.yml: the file is empty`},
		{"yaml syntax", "provider: {name: openfaas\n",
			`stack.yml: yaml: line 1: did not find expected ',' or '}'`},
		// Substitution runs over the whole file before it is parsed; its
		// errors still name the function and field the reference is in.
		{"unterminated substitution", head + "  a:\n    image: ${IMAGE\n",
			`stack.yml: function "a": field "image": unterminated "${": no closing "}" on this line (line 6)`},
		{"unsupported substitution", head + "  a:\n    image: ${IMAGE.x}\n",
			`stack.yml: function "a": field "image": bad substitution "${IMAGE.x}": unsupported operator (line 6)`},
		{"dash without colon", head + "  a:\n    image: ${IMAGE-x}\n",
			`stack.yml: function "a": field "image": bad substitution "${IMAGE-x}": faas-cli does not take "-" without ":" (use ${IMAGE:-...}) (line 6)`},
		{"substitution in the second function", head + "  a:\n    image: x\n  subst:\n    image: x\n    limits:\n      memory: ${MEM?need a size}\n",
			`stack.yml: function "subst": field "limits.memory": bad substitution "${MEM?need a size}": faas-cli does not take "?" without ":" (use ${MEM:?...}) (line 10)`},
		{"substitution in a list item", head + "  a:\n    image: x\n    secrets:\n      - ok\n      - ${SECRET:}\n",
			`stack.yml: function "a": field "secrets[1]": bad substitution "${SECRET:}": missing argument (line 9)`},
		{"unterminated inside quotes", head + "  a:\n    image: \"x:${TAG\"\n",
			`stack.yml: function "a": field "image": unterminated "${": no closing "}" on this line (line 6)`},
		{"substitution in a flow mapping", head + "  a: {image: x, fprocess: \"${P?}\"}\n",
			`stack.yml: function "a": field "fprocess": bad substitution "${P?}": faas-cli does not take "?" without ":" (use ${P:?...}) (line 5)`},
		{"substitution in a block scalar", head + "  a:\n    image: x\n    fprocess: |\n      one\n      ${P+}\n",
			`stack.yml: function "a": field "fprocess": bad substitution "${P+}": faas-cli does not take "+" without ":" (use ${P:+...}) (line 9)`},
		{"error inside a default", head + "  a:\n    image: x\n    environment:\n      MODE: ${MODE:-${}}\n",
			`stack.yml: function "a": field "environment.MODE": bad substitution "${}": expected a variable name (line 8)`},
		{"the first of two errors", head + "  a:\n    image: ${A?first}\n  b:\n    image: ${B?second}\n",
			`stack.yml: function "a": field "image": bad substitution "${A?first}": faas-cli does not take "?" without ":" (use ${A:?...}) (line 6)`},
		{"substitution outside functions", "provider:\n  name: openfaas\n  gateway: ${GW-where}\nfunctions:\n  a: {image: x}\n",
			`stack.yml: field "provider.gateway": bad substitution "${GW-where}": faas-cli does not take "-" without ":" (use ${GW:-...}) (line 3)`},
		{"substitution in a function name", head + "  ${NAME?}:\n    image: x\n",
			`stack.yml: field "functions": bad substitution "${NAME?}": faas-cli does not take "?" without ":" (use ${NAME:?...}) (line 5)`},
		{"substitution in a file that is not YAML", head + "  a:\n    image: ${IMAGE\n  - b\n",
			`stack.yml: unterminated "${": no closing "}" on this line (line 6)`},
		{"substituted to empty image", head + "  a:\n    image: ${IMAGE}\n",
			`stack.yml: function "a": field "image": required: every function needs an image (line 6)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("stack.yml", []byte(tt.yaml), envOf(nil))
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Errorf("error is a %T, want *stack.Error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error =\n  %s\nwant\n  %s", err, tt.want)
			}
		})
	}
}

func TestEnvironmentFileErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"missing file", nil,
			`function "a": field "environment_file[0]": open `},
		{"not a mapping", map[string]string{"env.yml": "environment: [a]\n"},
			`field "environment_file[0]": env.yml: field "environment": expected a mapping, found a list (line 1)`},
		{"syntax", map[string]string{"env.yml": "environment: {\n"},
			`field "environment_file[0]": env.yml: yaml: line 1:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"stack.yml": "provider: {name: openfaas}\nfunctions:\n  a:\n    image: x\n    environment_file: [env.yml]\n"}
			for k, v := range tt.files {
				files[k] = v
			}
			dir := writeFiles(t, files)
			_, err := Load(filepath.Join(dir, "stack.yml"), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestEnvironmentFilesAreRelativeToTheStack(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"sub/stack.yml": "provider: {name: openfaas}\nfunctions:\n  a:\n    image: x\n    environment_file: [../shared.yml, empty.yml]\n",
		"shared.yml":    "environment:\n  S: \"1\"\n",
		"sub/empty.yml": "",
	})
	t.Chdir(t.TempDir())
	s, err := Load(filepath.Join(dir, "sub", "stack.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Function("a").EnvVars(); !reflect.DeepEqual(got, map[string]string{"S": "1"}) {
		t.Errorf("EnvVars = %v", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yml"), nil)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error = %v, want not-exist", err)
	}
}

func TestSubstitutionUsesLookup(t *testing.T) {
	t.Setenv("FAAS_CRIU_TEST_TAG", "from-os")
	s, err := Parse("stack.yml", []byte("provider: {name: openfaas}\nfunctions:\n  a: {image: \"x:${FAAS_CRIU_TEST_TAG}\"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Functions[0].Image != "x:from-os" {
		t.Errorf("nil lookup does not read the environment: image %q", s.Functions[0].Image)
	}
}

func TestEnvironmentFileMustBeSmallRegularFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yml")
	os.WriteFile(big, []byte("environment:\n  A: "+strings.Repeat("x", maxEnvFile)+"\n"), 0o600)
	for _, c := range []struct{ file, says string }{
		{"/dev/zero", "not a regular file"},
		{big, "larger than"},
	} {
		stack := filepath.Join(dir, "stack.yml")
		os.WriteFile(stack, []byte("version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  f:\n    image: i\n    environment_file:\n      - "+c.file+"\n"), 0o600)
		done := make(chan error, 1)
		go func() { _, err := Load(stack, nil); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "environment_file") {
				t.Errorf("%s: %v", c.file, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Load did not return", c.file)
		}
	}
}

// TestFaasCLIFieldsAccepted: every field of faas-cli's stack schema is
// accepted, and a key faas-cli would ignore is a warning (naming the file,
// function, field and line), never a refusal.
func TestFaasCLIFieldsAccepted(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "env.yml"), []byte("environment:\n  A: b\nenvironmnt: {}\n"), 0o644)
	text := `version: 1.0
provider:
  name: openfaas
  gateway: 127.0.0.1:8080
  gatewy: x
configuration:
  templates:
    - name: go-http
      source: https://example.com/t
      ref: y
  copy:
    - common
    - ./lib/util.go
functions:
  sensor:
    lang: go-http
    handler: ./sensor
    image: sensor:latest
    platforms: linux/amd64,linux/arm64
    build_secrets:
      token: ./token.txt
    enviroment: {}
    limits:
      memroy: 1Mi
    environment_file: [env.yml]
extra: 1
`
	s, err := Parse(filepath.Join(dir, "stack.yml"), []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("a stack faas-cli takes was refused: %v", err)
	}
	f := s.Function("sensor")
	if f.Platforms != "linux/amd64,linux/arm64" || f.BuildSecrets["token"] != "./token.txt" {
		t.Errorf("platforms %q, build_secrets %v", f.Platforms, f.BuildSecrets)
	}
	if !reflect.DeepEqual(s.Configuration.Copy, []string{"common", "./lib/util.go"}) {
		t.Errorf("configuration.copy = %v", s.Configuration.Copy)
	}
	file := filepath.Join(dir, "stack.yml")
	want := []string{
		file + `: field "provider.gatewy": unknown key, ignored`,
		file + `: field "configuration.templates[0].ref": unknown key, ignored`,
		file + `: function "sensor": field "platforms": not used by faas-criu`,
		file + `: function "sensor": field "build_secrets": not used by faas-criu`,
		file + `: function "sensor": field "enviroment": unknown key, ignored`,
		file + `: function "sensor": field "limits.memroy": unknown key, ignored`,
		file + `: function "sensor": field "environment_file[0]": env.yml: field "environmnt": unknown key, ignored`,
		file + `: field "extra": unknown key, ignored`,
	}
	all := strings.Join(s.Warnings, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no warning %q; warnings:\n%s", w, all)
		}
	}
	if !strings.Contains(all, `"limits.memroy": unknown key, ignored (faas-cli ignores it too; a typo?) (line 24)`) {
		t.Errorf("warnings do not give lines:\n%s", all)
	}
}

// TestFaasCLISubstitutions: the stacks of issue 11, refused before, are
// read as faas-cli reads them.
func TestFaasCLISubstitutions(t *testing.T) {
	env := envOf(map[string]string{"OWNER": "MyTeam", "GIT_SHA": "0123456789abcdef"})
	text := "provider: {name: openfaas}\nfunctions:\n  a:\n    image: ${OWNER,,}/a:${GIT_SHA:0:7}\n    fprocess: echo $HOME\n"
	s, err := Parse("stack.yml", []byte(text), env)
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Functions[0]; f.Image != "myteam/a:0123456" || f.FProcess != "echo $HOME" {
		t.Errorf("image %q, fprocess %q; want myteam/a:0123456 and \"echo $HOME\" (faas-cli leaves $NAME alone)", f.Image, f.FProcess)
	}
}
