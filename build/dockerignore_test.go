package build

import (
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/faas-criu/faas-criu/stack"
)

// TestDockerignore: the context's .dockerignore is applied with Docker's
// rules (globs, "**", "!" exceptions, a directory excluding what is below
// it), and never removes the Dockerfile or itself.
func TestDockerignore(t *testing.T) {
	for _, tt := range []struct {
		name, ignore string
		want         []string
	}{
		{"none", "", []string{".dockerignore", "Dockerfile", "app.py", "node_modules", "node_modules/x.js", "secret.env", "tests", "tests/a_test.py", "tests/keep.txt"}},
		{"globs, a directory and a dot-prefixed path", "*.env\n./node_modules\n# comment\n",
			[]string{".dockerignore", "Dockerfile", "app.py", "tests", "tests/a_test.py", "tests/keep.txt"}},
		{"exception below an excluded directory", "tests\n!tests/keep.txt\n",
			[]string{".dockerignore", "Dockerfile", "app.py", "node_modules", "node_modules/x.js", "secret.env", "tests/keep.txt"}},
		{"double star", "**/*_test.py\n", []string{".dockerignore", "Dockerfile", "app.py", "node_modules", "node_modules/x.js", "secret.env", "tests", "tests/keep.txt"}},
		{"Dockerfile and .dockerignore are always sent", "*\n", []string{".dockerignore", "Dockerfile"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, map[string]string{
				"Dockerfile": "FROM scratch\n", "app.py": "x", "secret.env": "K=V", ".dockerignore": tt.ignore,
				"node_modules/x.js": "x", "tests/a_test.py": "x", "tests/keep.txt": "x",
			})
			files, err := buildContext("", dir, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, tt.want) {
				t.Errorf("context = %v\nwant      %v", got, tt.want)
			}
		})
	}

	// A template's .dockerignore applies to the handler copied into it.
	root := t.TempDir()
	tmpl, handler := filepath.Join(root, "tmpl"), filepath.Join(root, "handler")
	write(t, tmpl, map[string]string{"Dockerfile": "FROM scratch\n", ".dockerignore": "function/*.pyc\n"})
	write(t, handler, map[string]string{"handler.py": "x", "handler.pyc": "x"})
	files, err := buildContext(tmpl, handler, "function")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["function/handler.pyc"]; ok {
		t.Error("the template's .dockerignore did not apply to the handler")
	}
	if _, ok := files["function/handler.py"]; !ok {
		t.Error("function/handler.py is missing")
	}
}

// TestShrinkwrap writes the build context to build/<fn> instead of
// building, with no Docker engine.
func TestShrinkwrap(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"fn/Dockerfile": "FROM scratch\n", "fn/main.go": "package main\n", "fn/.dockerignore": "*.tmp\n", "fn/x.tmp": "x"})
	os.Symlink("main.go", filepath.Join(dir, "fn", "link.go"))
	s := writeStackFile(t, dir, "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  fn: {lang: dockerfile, handler: ./fn, image: x/fn:1}\n")
	var out stringsBuilder
	if err := Run(t.Context(), Options{Stack: s, Functions: s.Functions, Shrinkwrap: true, Out: &out}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"Dockerfile": "FROM scratch\n", "main.go": "package main\n"} {
		if got, err := os.ReadFile(filepath.Join(dir, "build", "fn", name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v", name, got, err)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "build", "fn", "link.go")); err != nil || target != "main.go" {
		t.Errorf("link.go -> %q, %v", target, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "build", "fn", "x.tmp")); !os.IsNotExist(err) {
		t.Errorf("x.tmp was written despite .dockerignore: %v", err)
	}
	if out.String() != "shrinkwrapped fn: "+filepath.Join(dir, "build", "fn")+"\n" {
		t.Errorf("output = %q", out.String())
	}
}

// TestShrinkwrapCopies: a shrinkwrapped context carries the stack's
// configuration.copy too, as the context sent to the engine does.
func TestShrinkwrapCopies(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"fn/Dockerfile": "FROM scratch\n", "common/util.go": "package common\n"})
	s := writeStackFile(t, dir, "version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  fn: {lang: dockerfile, handler: ./fn, image: x/fn:1}\nconfiguration:\n  copy: [common]\n")
	if err := Run(t.Context(), Options{Stack: s, Functions: s.Functions, Shrinkwrap: true, Out: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "build", "fn", "common", "util.go")); err != nil || string(got) != "package common\n" {
		t.Errorf("common/util.go = %q, %v", got, err)
	}
}

type stringsBuilder = strings.Builder

func writeStackFile(t *testing.T, dir, content string) *stack.Stack {
	t.Helper()
	p := filepath.Join(dir, "stack.yml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recorder is a Progress that keeps what it was told.
type recorder struct{ events []string }

func (r *recorder) Start(what string) { r.events = append(r.events, "start "+what) }
func (r *recorder) Phase(text string) { r.events = append(r.events, "phase "+text) }
func (r *recorder) Done(err error)    { r.events = append(r.events, "done") }

// TestPhases: debootstrap's "I:" lines reach the Progress, whole, however
// the output is split; other lines only reach the log.
func TestPhases(t *testing.T) {
	rec := &recorder{}
	var log strings.Builder
	w := withPhases(context.WithValue(t.Context(), progressKey{}, Progress(rec)), &log)
	for _, chunk := range []string{"I: Retrieving In", "Release \nW: a warning\nI: Validating", " Packages\n", "I: no newline yet"} {
		w.Write([]byte(chunk))
	}
	want := []string{"phase Retrieving InRelease", "phase Validating Packages"}
	if !slices.Equal(rec.events, want) {
		t.Errorf("events = %q, want %q", rec.events, want)
	}
	if !strings.Contains(log.String(), "W: a warning") {
		t.Errorf("log = %q", log.String())
	}
	// No Progress in the context: the writer is left as it is.
	if got := withPhases(t.Context(), &log); got != io.Writer(&log) {
		t.Errorf("withPhases without a Progress wrapped the writer: %T", got)
	}
}
