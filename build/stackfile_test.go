package build

import (
	"os"
	"strings"
	"testing"
)

// TestStackFileOrder: without -f, stack.yaml is read before stack.yml, as
// faas-cli does.
func TestStackFileOrder(t *testing.T) {
	t.Chdir(t.TempDir())
	if got := StackFile(""); got != "stack.yaml" {
		t.Errorf("with no file: %q, want stack.yaml (named in the error)", got)
	}
	os.WriteFile("stack.yml", []byte("x"), 0o644)
	if got := StackFile(""); got != "stack.yml" {
		t.Errorf("with stack.yml only: %q", got)
	}
	os.WriteFile("stack.yaml", []byte("x"), 0o644)
	if got := StackFile(""); got != "stack.yaml" {
		t.Errorf("with both: %q, want stack.yaml", got)
	}
	if got := StackFile("other.yml"); got != "other.yml" {
		t.Errorf("with -f other.yml: %q", got)
	}
}

// TestBuildContextCopy: configuration.copy puts the stack's extra paths into
// the handler's folder of the context, as faas-cli does, and refuses paths
// outside the stack's directory.
func TestBuildContextCopy(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{
		"tmpl/Dockerfile":   "FROM scratch\n",
		"fn/handler.go":     "package function\n",
		"common/util.go":    "package common\n",
		"common/sub/x.txt":  "x\n",
		"lib/one.go":        "package lib\n",
		"plain/Dockerfile":  "FROM scratch\n",
		"plain/app/main.go": "package main\n",
	} {
		p := root + "/" + name
		os.MkdirAll(p[:strings.LastIndex(p, "/")], 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	files, err := buildContextCopy(root+"/tmpl", root+"/fn", "function", root, []string{"common", "./lib/one.go"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Dockerfile", "function/handler.go", "function/common/util.go", "function/common/sub/x.txt", "function/lib/one.go"} {
		if _, ok := files[want]; !ok {
			t.Errorf("context has no %s: %v", want, keys(files))
		}
	}
	// lang: dockerfile: into the context itself.
	files, err = buildContextCopy("", root+"/plain", "", root, []string{"common"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["common/util.go"]; !ok {
		t.Errorf("dockerfile context has no common/util.go: %v", keys(files))
	}
	for _, bad := range []string{"..", "../x", "/etc", ".", "missing"} {
		if _, err := buildContextCopy("", root+"/plain", "", root, []string{bad}); err == nil {
			t.Errorf("configuration.copy %q accepted", bad)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRequirementsNeverDropped: a requirements.txt with requirements fails
// the build naming the file when the template does not install it (the
// python3-http template once built and then failed at import time); one
// with only comments, or a template that reads it, passes.
func TestRequirementsNeverDropped(t *testing.T) {
	tm, err := findTemplate("python3-http-debian", []string{"../templates/template"})
	if err != nil {
		t.Fatal(err)
	}
	handler := t.TempDir()
	if err := checkDependencies(tm, handler); err != nil {
		t.Errorf("no requirements.txt: %v", err)
	}
	req := handler + "/requirements.txt"
	os.WriteFile(req, []byte("# none\n\n"), 0o644)
	if err := checkDependencies(tm, handler); err != nil {
		t.Errorf("only comments: %v", err)
	}
	os.WriteFile(req, []byte("# deps\nrequests==2.31\nflask  # web\n"), 0o644)
	err = checkDependencies(tm, handler)
	if err == nil || !strings.Contains(err.Error(), req) || !strings.Contains(err.Error(), "requests==2.31, flask") {
		t.Errorf("requirements the template drops: %v, want an error naming %s and its requirements", err, req)
	}
	// A template whose Dockerfile installs requirements.txt.
	pip := t.TempDir()
	os.WriteFile(pip+"/Dockerfile", []byte("FROM x\nRUN pip install -r requirements.txt\n"), 0o644)
	if err := checkDependencies(&foundTemplate{Dir: pip}, handler); err != nil {
		t.Errorf("a template that installs them: %v", err)
	}
}

// TestPython3HTTPRenamed: asking for python3-http, which faas-criu's
// template was called, names its new name.
func TestPython3HTTPRenamed(t *testing.T) {
	_, err := findTemplate("python3-http", []string{"../templates/template"})
	if err == nil || !strings.Contains(err.Error(), "lang: python3-http-debian") {
		t.Errorf("lang python3-http: %v, want a hint naming python3-http-debian", err)
	}
}
