package stack

import (
	"errors"
	"fmt"
	"github.com/faas-criu/faas-criu/api"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzEnv is the environment every fuzzed stack file is substituted with.
var fuzzEnv = map[string]string{
	"TAG":    "v2",
	"GW":     "http://127.0.0.1:8080",
	"EMPTY":  "",
	"NESTED": "${TAG}",
	"DOLLAR": "$$",
	"LONG":   strings.Repeat("x", 100),
	"NL":     "a\nb: c",
}

// mergeChain is a stack whose functions each merge the previous one twice:
// read naively, function n costs 2^n.
func mergeChain(n int) string {
	var b strings.Builder
	b.WriteString("version: 1.0\nprovider: {name: openfaas}\nfunctions:\n  a0: &a0 {image: x}\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d {<<: [*a%d, *a%d]}\n", i, i, i-1, i-1)
	}
	return b.String()
}

// FuzzLoad reads fuzzed bytes as a stack.yml. Whatever it holds: no panic,
// every error names the file, and a stack that loads has functions whose
// deployments all have a valid name and an image.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(fullStack))
	f.Add([]byte("version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  hello:\n    image: hello:latest\n    environment_file: [env.yml]\n"))
	f.Add([]byte("provider: {name: faas, gateway: \"${GW}\"}\nfunctions:\n  a: {image: \"x:${TAG:-latest}\", namespace: dev, labels: {k: v}, limits: {memory: 1Gi, cpu: 0.5}}\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions:\n  base: &b {image: x, secrets: [s1]}\n  copy:\n    <<: *b\n    image: y\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions:\n  a: {image: x, environment: {A: ${NL}}}\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions:\n  a: {image: x, <<: [1, {b: 2}]}\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions: {a: &a {image: x, labels: *a}}\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions:\n  a:\n    image: ${NOPE:?set NOPE}\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions:\n  a:\n    image: ${UNTERMINATED\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions:\n  Bad_Name: {image: x}\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions:\n  a: {image: \"UPPER/Case::\"}\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions:\n  a: {image: x, environment_file: [\"\"]}\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions:\n  a: {image: x, environment_file: [missing.yml]}\n"))
	f.Add([]byte("version: 2.0\n"))
	f.Add([]byte("[1, 2, 3]"))
	f.Add([]byte("{{{{"))
	f.Add([]byte("&a [*a]"))
	// A mapping merging itself recursed until the stack overflowed.
	f.Add([]byte("provider: {name: openfaas}\nfunctions: {a: &a {image: x, <<: *a}}\n"))
	f.Add([]byte("provider: {name: openfaas}\nfunctions: {a: &a {image: x, b: {<<: [*a]}}}\n"))
	f.Add([]byte("functions: !!binary aGVsbG8=\n"))
	f.Add([]byte("\xff\xfe\x00"))
	f.Add([]byte(""))
	f.Add([]byte("# only a comment\n"))
	f.Add([]byte(mergeChain(40))) // exponential before the walker memoised merges
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "stack.yml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "env.yml"), []byte("environment:\n  FROM_FILE: file\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Load(path, envOf(fuzzEnv))
		if err != nil {
			if s != nil {
				t.Errorf("Load returned a stack and an error: %v", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file %s: %v", path, err)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error is not a *stack.Error: %T %v", err, err)
			}
			return
		}
		if s.Path != path || s.Dir != dir {
			t.Errorf("Path %q Dir %q, want %q %q", s.Path, s.Dir, path, dir)
		}
		if s.Provider.Name != "openfaas" && s.Provider.Name != "faas" {
			t.Errorf("provider %q accepted", s.Provider.Name)
		}
		if len(s.Functions) == 0 {
			t.Fatal("a stack without functions loaded")
		}
		deps, err := s.Deployments("")
		if err != nil {
			t.Fatalf("Deployments: %v", err)
		}
		if len(deps) != len(s.Functions) {
			t.Fatalf("%d deployments for %d functions", len(deps), len(s.Functions))
		}
		seen := map[string]bool{}
		for i, d := range deps {
			if d.Service == "" || d.Image == "" {
				t.Fatalf("deployment %d without a service or image: %+v", i, d)
			}
			if err := api.ValidateName(d.Service); err != nil {
				t.Errorf("deployment %d: %v", i, err)
			}
			if d.Namespace != "" {
				if err := api.ValidateNamespace(d.Namespace); err != nil {
					t.Errorf("deployment %d: %v", i, err)
				}
			}
			if seen[d.Service] {
				t.Errorf("function %q listed twice", d.Service)
			}
			seen[d.Service] = true
			if s.Functions[i].Name != d.Service {
				t.Errorf("deployment %d is %q, function %d is %q", i, d.Service, i, s.Functions[i].Name)
			}
		}
		if all, err := s.Select("*"); err != nil || len(all) != len(s.Functions) {
			t.Errorf("Select(*) = %d functions, %v", len(all), err)
		}
	})
}

// FuzzSubstitute runs the ${VAR} substituter on fuzzed text. No panic; text
// without "$" or "\\" comes out as it went in; an error is a *SubstError on
// a line of the text. (Output length is not bounded by the input: as in
// envsubst, ${X//a/${Y}} multiplies.)
func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{
		"", "plain text\nno references\n", "$", "$$", "$$$", "${", "${}", "${A", "${A\n}", "$A$B_2$1",
		"${TAG}", "${TAG:-d}", "${NOPE:-d}", "${EMPTY-d}", "${NOPE=d}", "${EMPTY:=d}",
		"${NOPE:?must be set}", "${EMPTY?x}", "${NOPE?}", "${TAG:+alt}", "${TAG/a/b}", "${#TAG}", "${TAG,,}", "${TAG:0:7}", "${TAG##*/}", "${TAG%[a-]}", "${TAG//a/\\/}", `a\\b\/`,
		"${NOPE:-${NOPE2:-${TAG}}}", "${NOPE:-${NOPE2:-\n${TAG}}}", "${NOPE:-$${x}}", "${NESTED}", "${LONG}${LONG}$LONG",
		"a: 1\nb: ${NOPE:?line two}\n", "x\n\n${1A}", "${NOPE:-}}}", "${é}", "$é", "${TAG}\xff\xfe",
		strings.Repeat("${NOPE:-", 50) + strings.Repeat("}", 50),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		out, err := Substitute(text, envOf(fuzzEnv))
		if !strings.ContainsAny(text, "$\\") {
			if err != nil || out != text {
				t.Fatalf("text without $ or \\ changed: %q -> %q, %v", text, out, err)
			}
			return
		}
		if err != nil {
			if out != "" {
				t.Errorf("output %q with error %v", out, err)
			}
			var se *SubstError
			if !errors.As(err, &se) {
				t.Fatalf("error is not a *SubstError: %T %v", err, err)
			}
			if lines := 1 + strings.Count(text, "\n"); se.Line < 1 || se.Line > lines {
				t.Fatalf("error on line %d of a %d-line text: %v", se.Line, lines, err)
			}
			return
		}
		if again, err2 := Substitute(text, envOf(fuzzEnv)); again != out || err2 != nil {
			t.Fatalf("not deterministic: %q then %q, %v", out, again, err2)
		}
	})
}
