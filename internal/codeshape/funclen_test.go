package codeshape

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// production says whether a file of the module (path relative to its root)
// is production code: not a test, not the integration harness or fixture
// (test/), not the benchmark (bench/).
func production(rel string) bool {
	if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
		return false
	}
	top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return top != "test" && top != "bench"
}

// bodyLines counts a function's body lines, both braces' lines included
// (as the team's funclen tool counts them).
func bodyLines(fset *token.FileSet, fn *ast.FuncDecl) int {
	return fset.Position(fn.Body.Rbrace).Line - fset.Position(fn.Body.Lbrace).Line + 1
}

// longFuncs lists the functions under root longer than max body lines.
func longFuncs(t *testing.T, root string, max int) []string {
	t.Helper()
	fset := token.NewFileSet()
	var long []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if name := d.Name(); rel != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !production(rel) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Body != nil {
				if n := bodyLines(fset, fn); n > max {
					long = append(long, fmt.Sprintf("%s: %s has %d lines", rel, fn.Name.Name, n))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return long
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNoLongProductionFunctions(t *testing.T) {
	for _, l := range longFuncs(t, "../..", MaxFuncLines) {
		t.Errorf("%s, more than %d: split it into named steps", l, MaxFuncLines)
	}
}

// TestLongFuncsFindsOne guards the check itself: in a tree with one
// function just over the limit (and the same in a test file and bench/),
// exactly that one must be reported, or the test above would pass on anything.
func TestLongFuncsFindsOne(t *testing.T) {
	dir := t.TempDir()
	body := "package x\n\nfunc long() {\n" + strings.Repeat("\t_ = 1\n", MaxFuncLines-1) + "}\n\nfunc short() {\n\t_ = 1\n}\n"
	write(t, filepath.Join(dir, "x.go"), body)
	write(t, filepath.Join(dir, "x_test.go"), strings.Replace(body, "long()", "longTest()", 1))
	write(t, filepath.Join(dir, "bench", "b.go"), body)
	got := longFuncs(t, dir, MaxFuncLines)
	if len(got) != 1 || got[0] != fmt.Sprintf("x.go: long has %d lines", MaxFuncLines+1) {
		t.Fatalf("longFuncs = %q, want only x.go's long (%d lines)", got, MaxFuncLines+1)
	}
}
