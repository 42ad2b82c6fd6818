package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDockerfileFroms(t *testing.T) {
	tests := []struct {
		name string
		df   string
		args map[string]string
		want []fromImage
	}{
		{"arg default", "ARG GO_IMAGE=golang:1.23\nFROM ${GO_IMAGE} AS build\nRUN x\nFROM scratch\nCOPY --from=build /a /a\n", nil,
			[]fromImage{{image: "golang:1.23", arg: "GO_IMAGE"}}},
		{"build arg overrides", "ARG GO_IMAGE=golang:1.23\nFROM $GO_IMAGE\n", map[string]string{"GO_IMAGE": "my/go:1"},
			[]fromImage{{image: "my/go:1", arg: "GO_IMAGE"}}},
		{"literal and stage reuse", "# comment\nFROM alpine:3.19 as base\nFROM base\nFROM --platform=linux/amd64 debian:bookworm\n", nil,
			[]fromImage{{image: "alpine:3.19"}, {image: "debian:bookworm"}}},
		{"mixed expression is not an arg", "ARG TAG=3.12\nFROM python:${TAG}-slim\n", nil,
			[]fromImage{{image: "python:3.12-slim"}}},
		{"quoted default, default operator, continuation", "ARG IMG=\"python:3.12-slim\"\nFROM \\\n  ${IMG:-x}\n", nil,
			[]fromImage{{image: "python:3.12-slim", arg: "IMG"}}},
		{"ARG after FROM is not global", "FROM scratch\nARG X=y\n", nil, nil},
		// Dockerfile rules, not a stack file's: $NAME is expanded, and
		// "-" and "+" are operators.
		{"bare name and dash default", "ARG V=1\nFROM busybox:$V\nFROM alpine:${NOPE-3.19}\nFROM debian:${V:+bookworm}\n", nil,
			[]fromImage{{image: "busybox:1"}, {image: "alpine:3.19"}, {image: "debian:bookworm"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dockerfileFroms([]byte(tt.df), tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := dockerfileFroms([]byte("ARG X\nFROM ${X}\n"), nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty image: %v", err)
	}
}

// fakeDocker answers ImageInspect from a set of present images.
type fakeDocker struct {
	client.APIClient
	present map[string]bool
}

func (f *fakeDocker) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	if f.present[ref] {
		return image.InspectResponse{ID: "sha256:x"}, nil
	}
	return image.InspectResponse{}, errdefs.NotFound(errors.New("no such image"))
}

func TestPlanBases(t *testing.T) {
	goImg, err := goBuilderImage()
	if err != nil {
		t.Fatal("no Go toolchain:", err)
	}
	const goDF = "ARG GO_IMAGE=golang:1.23\nFROM ${GO_IMAGE} AS build\nFROM scratch\n"
	const pyDF = "ARG PYTHON_IMAGE=python:3.12-slim\nFROM ${PYTHON_IMAGE}\n"
	tests := []struct {
		name      string
		df        string
		present   []string
		buildArgs map[string]string
		pull      bool
		wantArgs  map[string]string
		wantBases []string
		wantErr   string
	}{
		{"upstream missing: local stand-in", goDF, nil, nil, false,
			map[string]string{"GO_IMAGE": goImg.Ref}, []string{goImg.Ref}, ""},
		{"upstream present: used", goDF, []string{"golang:1.23"}, nil, false,
			map[string]string{}, nil, ""},
		{"pull: Docker pulls", goDF, nil, nil, true, map[string]string{}, nil, ""},
		{"python stand-in", pyDF, nil, nil, false,
			map[string]string{"PYTHON_IMAGE": python3Ref}, []string{python3Ref}, ""},
		{"stand-in named explicitly and missing: made", goDF, nil, map[string]string{"GO_IMAGE": goImg.Ref}, false,
			map[string]string{}, []string{goImg.Ref}, ""},
		{"explicit build arg missing: error", goDF, nil, map[string]string{"GO_IMAGE": "golang:1.24"}, false,
			nil, nil, "base image golang:1.24 is not present locally: build or load it, or pass --pull to let Docker pull it, or set build_args: {GO_IMAGE: IMAGE}"},
		{"literal missing: error", "FROM alpine:3.19\n", nil, nil, false,
			nil, nil, "base image alpine:3.19 is not present locally: build or load it, or pass --pull to let Docker pull it"},
		{"unknown upstream from arg: error", "ARG B=node:20\nFROM $B\n", nil, nil, false,
			nil, nil, "set build_args: {B: IMAGE}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := &fakeDocker{present: map[string]bool{}}
			for _, p := range tt.present {
				fd.present[p] = true
			}
			plan, err := planBases(context.Background(), fd, []byte(tt.df), tt.buildArgs, tt.pull)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var refs []string
			for _, b := range plan.bases {
				refs = append(refs, b.Ref)
			}
			if !reflect.DeepEqual(plan.args, tt.wantArgs) || !reflect.DeepEqual(refs, tt.wantBases) {
				t.Errorf("plan = args %v bases %v, want %v %v", plan.args, refs, tt.wantArgs, tt.wantBases)
			}
		})
	}
}

// untar reads a tar stream into name → content ("" for dirs, "-> target"
// for symlinks) and name → mode. Every entry must be owned by root, except
// those under kept ("" for none): they were copied from a tree the test
// wrote, with its owner kept, so they belong to whoever runs the test (root
// in make test, anyone in a plain go test).
func untar(t *testing.T, r io.Reader, kept string) (map[string]string, map[string]int64) {
	t.Helper()
	files, modes := map[string]string{}, map[string]int64{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, modes
		}
		if err != nil {
			t.Fatal(err)
		}
		uid, gid := 0, 0
		if kept != "" && strings.HasPrefix(h.Name, kept) {
			uid, gid = os.Getuid(), os.Getgid()
		}
		if h.Uid != uid || h.Gid != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", h.Name, h.Uid, h.Gid, uid, gid)
		}
		b, _ := io.ReadAll(tr)
		switch h.Typeflag {
		case tar.TypeSymlink:
			files[h.Name] = "-> " + h.Linkname
		case tar.TypeLink:
			files[h.Name] = "=> " + h.Linkname
		default:
			files[h.Name] = string(b)
		}
		modes[h.Name] = h.Mode
	}
}

func TestBuildContext(t *testing.T) {
	root := t.TempDir()
	tmpl, handler := filepath.Join(root, "tmpl"), filepath.Join(root, "handler")
	write(t, tmpl, map[string]string{
		"Dockerfile":          "FROM scratch\n",
		"template.yml":        "language: x\n",
		"main.go":             "package main\n",
		"function/handler.go": "skeleton\n",
		"function/extra.go":   "kept from the template\n",
		"function/sub/a.txt":  "a dir the handler replaces with a file\n",
	})
	write(t, handler, map[string]string{
		"handler.go":          "mine\n",
		"sub":                 "now a file\n",
		"lib/util.go":         "util\n",
		"build/hello/junk":    "left out\n",
		"template/x/junk":     "left out\n",
		"nested/build/kept":   "only the top-level build is skipped\n",
		"nested/template.txt": "kept\n",
	})
	os.Chmod(filepath.Join(handler, "lib/util.go"), 0o755)
	os.Symlink("handler.go", filepath.Join(handler, "link.go"))

	files, err := buildContext(tmpl, handler, "function")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeContext(&buf, files); err != nil {
		t.Fatal(err)
	}
	got, modes := untar(t, &buf, "")
	want := map[string]string{
		"Dockerfile":                   "FROM scratch\n",
		"template.yml":                 "language: x\n",
		"main.go":                      "package main\n",
		"function/":                    "",
		"function/handler.go":          "mine\n",
		"function/extra.go":            "kept from the template\n",
		"function/sub":                 "now a file\n",
		"function/lib/":                "",
		"function/lib/util.go":         "util\n",
		"function/link.go":             "-> handler.go",
		"function/nested/":             "",
		"function/nested/build/":       "",
		"function/nested/build/kept":   "only the top-level build is skipped\n",
		"function/nested/template.txt": "kept\n",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("context =\n%v\nwant\n%v", got, want)
	}
	if modes["function/lib/util.go"] != 0o755 || modes["main.go"] != 0o644 {
		t.Errorf("modes not kept: %o %o", modes["function/lib/util.go"], modes["main.go"])
	}

	// Another handler folder, as template.yml's handler_folder says.
	files, err = buildContext(tmpl, handler, "src/fn")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["src/fn/handler.go"]; !ok {
		t.Errorf("handler_folder ignored: %v", files)
	}

	// lang: dockerfile builds the handler directory itself.
	if _, err := buildContext("", handler, ""); err == nil || !strings.Contains(err.Error(), "no Dockerfile") {
		t.Errorf("dockerfile lang without a Dockerfile: %v", err)
	}
	write(t, handler, map[string]string{"Dockerfile": "FROM scratch\n"})
	files, err = buildContext("", handler, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["Dockerfile"]; !ok {
		t.Errorf("dockerfile context: %v", files)
	}
}

func TestFindTemplate(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	stackDir := filepath.Join(repo, "examples", "deep")
	write(t, root, map[string]string{
		"repo/templates/template/go-http/Dockerfile":             "FROM repo\n",
		"repo/templates/template/go-http/template.yml":           "language: go-http\nfprocess: /handler\nbuild_options:\n  - name: dev\n    packages: [make, git]\n",
		"repo/templates/template/python3-http-debian/Dockerfile": "FROM repo\n",
		"repo/examples/deep/template/go-http/Dockerfile":         "FROM local\n",
		"repo/examples/deep/template/nodf/template.yml":          "language: nodf\n",
		"other/templates/go-http/Dockerfile":                     "FROM override\n",
		"bad/x/Dockerfile":                                       "FROM x\n",
		"bad/x/template.yml":                                     "handler_folder: ../../etc\n",
	})
	places := templatePlaces(stackDir, "")
	for _, tt := range []struct {
		lang, wantDir string
	}{
		{"go-http", filepath.Join(stackDir, "template", "go-http")},
		{"python3-http-debian", filepath.Join(repo, "templates", "template", "python3-http-debian")},
	} {
		tm, err := findTemplate(tt.lang, places)
		if err != nil {
			t.Fatal(err)
		}
		if tm.Dir != tt.wantDir || tm.Spec.HandlerFolder != "function" {
			t.Errorf("%s: dir %s folder %q, want %s", tt.lang, tm.Dir, tm.Spec.HandlerFolder, tt.wantDir)
		}
	}
	tm, err := findTemplate("go-http", templatePlaces(filepath.Join(repo, "examples"), ""))
	if err != nil || tm.Spec.FProcess != "/handler" {
		t.Fatalf("repo template: %+v %v", tm, err)
	}
	if pkgs, err := tm.additionalPackages([]string{"dev"}); err != nil || !reflect.DeepEqual(pkgs, []string{"make", "git"}) {
		t.Errorf("build option: %v %v", pkgs, err)
	}
	if _, err := tm.additionalPackages([]string{"nope"}); err == nil || !strings.Contains(err.Error(), `build option "nope" is not offered`) {
		t.Errorf("unknown build option: %v", err)
	}
	tm, err = findTemplate("go-http", templatePlaces(stackDir, filepath.Join(root, "other", "templates")))
	if err != nil || tm.Dir != filepath.Join(root, "other", "templates", "go-http") {
		t.Errorf("--template-dir: %+v %v", tm, err)
	}
	if _, err := findTemplate("python3-http-debian", templatePlaces(stackDir, filepath.Join(root, "other", "templates"))); err == nil {
		t.Error("--template-dir must be the only place looked")
	}
	for lang, want := range map[string]string{
		"nodf": "no Dockerfile",
		"ruby": `no template "ruby" in ` + filepath.Join(stackDir, "template"),
		"../x": "invalid lang",
	} {
		if _, err := findTemplate(lang, places); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("findTemplate(%q) = %v, want %q", lang, err, want)
		}
	}
	if _, err := findTemplate("x", []string{filepath.Join(root, "bad")}); err == nil || !strings.Contains(err.Error(), "leaves the build context") {
		t.Errorf("handler_folder escaping: %v", err)
	}
}

func TestRepositoryTemplates(t *testing.T) {
	for _, lang := range []string{"go-http", "python3-http-debian"} {
		tm, err := findTemplate(lang, []string{filepath.Join("..", "templates", "template")})
		if err != nil {
			t.Fatal(err)
		}
		if tm.Spec.Language != lang || tm.Spec.FProcess == "" || tm.Spec.WelcomeMessage == "" {
			t.Errorf("%s: template.yml = %+v", lang, tm.Spec)
		}
		df, err := os.ReadFile(filepath.Join(tm.Dir, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		froms, err := dockerfileFroms(df, nil)
		if err != nil || len(froms) != 1 || froms[0].arg == "" || localBases[familiarRepo(froms[0].image)] == nil {
			t.Errorf("%s: base image must come from an ARG with a local stand-in: %+v %v", lang, froms, err)
		}
	}
	main, err := os.ReadFile("../templates/template/go-http/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(main, []byte("//go:debug multipathtcp=0\n\n")) {
		t.Error("go-http main.go must start with //go:debug multipathtcp=0 and a blank line")
	}
}

func TestDebianMirror(t *testing.T) {
	oneLine := "# comment\ndeb-src http://src/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.local/debian/ bookworm main contrib\n"
	if got := mirrorOneLine(oneLine, "bookworm"); got != "http://mirror.local/debian/" {
		t.Errorf("one-line = %q", got)
	}
	if got := mirrorOneLine("deb http://x/debian bookworm-updates main\n", "bookworm"); got != "" {
		t.Errorf("suite must match exactly: %q", got)
	}
	deb822 := `Types: deb
URIs: http://sec/debian-security
Suites: bookworm-security
Components: main

Types: deb-src deb
# a comment
URIs: http://deb.example/debian
Suites: bookworm
 bookworm-updates
Components: contrib main

Enabled: no
Types: deb
URIs: http://disabled/debian
Suites: bookworm
Components: main
`
	if got := mirrorDeb822(deb822, "bookworm"); got != "http://deb.example/debian" {
		t.Errorf("deb822 = %q", got)
	}
	if got := mirrorDeb822(deb822, "trixie"); got != "" {
		t.Errorf("deb822 other suite = %q", got)
	}
}

func TestRootfsWriter(t *testing.T) {
	src := t.TempDir()
	write(t, src, map[string]string{"a/one": "1", "skip/me": "x", "b/testdata/big": "x"})
	if err := os.Link(filepath.Join(src, "a/one"), filepath.Join(src, "a/two")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(src, "a"), 0o777|os.ModeSticky)
	var buf bytes.Buffer
	r := newRootfsWriter(&buf)
	if err := r.dir("tmp", 0o1777, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.file("etc/passwd", 0o644, []byte("root\n")); err != nil {
		t.Fatal(err)
	}
	if err := r.symlink("bin/sh", "/bin/busybox"); err != nil {
		t.Fatal(err)
	}
	skip := func(rel string) bool { return rel == "skip" || filepath.Base(rel) == "testdata" }
	if err := r.tree(src, "usr/local/x", skip); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got, modes := untar(t, &buf, "usr/local/x/")
	want := map[string]string{
		"tmp/": "", "etc/": "", "etc/passwd": "root\n", "bin/": "", "bin/sh": "-> /bin/busybox",
		"usr/": "", "usr/local/": "", "usr/local/x/": "", "usr/local/x/a/": "",
		"usr/local/x/a/one": "1", "usr/local/x/a/two": "=> usr/local/x/a/one", "usr/local/x/b/": "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rootfs =\n%v\nwant\n%v", got, want)
	}
	if modes["tmp/"] != 0o1777 || modes["usr/local/x/a/"] != 0o1777 {
		t.Errorf("sticky bit lost: %o %o", modes["tmp/"], modes["usr/local/x/a/"])
	}
}

// TestMountsUnder reads the real mount table, as any user: /proc is a mount
// point everywhere this runs, a fresh directory holds none, and a path that
// merely starts with the same letters is not below the directory.
func TestMountsUnder(t *testing.T) {
	got, err := mountsUnder("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, "/proc") {
		t.Errorf("mountsUnder(/proc) = %q, want /proc among them", got)
	}
	for i, m := range got {
		if m != "/proc" && !strings.HasPrefix(m, "/proc/") {
			t.Errorf("mountsUnder(/proc) has %q", m)
		}
		if i > 0 && len(m) > len(got[i-1]) {
			t.Errorf("not deepest first: %q after %q", m, got[i-1])
		}
	}
	if got, err := mountsUnder("/pro"); err != nil || len(got) != 0 {
		t.Errorf("mountsUnder(/pro) = %q, %v; want none", got, err)
	}
	if got, err := mountsUnder(t.TempDir()); err != nil || len(got) != 0 {
		t.Errorf("mountsUnder(a new directory) = %q, %v; want none", got, err)
	}
}

func TestLineTail(t *testing.T) {
	lt := &lineTail{max: 2}
	lt.add("a\nb\n")
	lt.add("\n \x1b[91mc\x1b[0m\n\n")
	if lt.String() != "b\n c" {
		t.Errorf("tail = %q", lt.String())
	}
	msgs := `{"stream":"Step 1/2\n"}{"status":"Pulling","id":"abc"}{"errorDetail":{"message":"boom"},"error":"boom"}`
	var out bytes.Buffer
	err := readMessages(strings.NewReader(msgs), &out, lt)
	if err == nil || err.Error() != "boom" || out.String() != "Step 1/2\nabc Pulling\n" {
		t.Errorf("readMessages = %v, %q", err, out.String())
	}
}
