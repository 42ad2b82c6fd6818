package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var criuCreate = []string{"--create", "--gzip", "--no-unquote", "--no-wildcards", "--one-file-system", "--check-links", "--preserve-permissions", "--sparse", "--numeric-owner", "--directory", "/proc/self/fd/0", "."}

func criuExtract(dir string) []string {
	return []string{"--extract", "--gzip", "--no-unquote", "--no-wildcards", "--directory", dir}
}

// install builds the program as bin/tar (as setup installs it) and gives
// the PATH CRIU would run it with: bin first, then next (a directory
// holding the "GNU tar" it falls back to), then the rest.
func install(t *testing.T, next string) (bin, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: CRIU runs tar as root")
	}
	gnu, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("needs GNU tar on PATH")
	}
	if next == "" {
		next = filepath.Dir(gnu)
	}
	bin = filepath.Join(t.TempDir(), "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "tar"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin, bin + ":" + next + ":" + os.Getenv("PATH")
}

// fakeGNUTar is a "tar" that only notes it ran: the program must not run
// GNU tar for CRIU's runs of ordinary trees and archives.
func fakeGNUTar(t *testing.T) (dir, marker string) {
	t.Helper()
	dir = t.TempDir()
	marker = filepath.Join(dir, "ran")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >>%s\nexit 1\n", marker)
	if err := os.WriteFile(filepath.Join(dir, "tar"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, marker
}

// run runs tar (the program, or GNU tar when path has no bin) with stdin
// and stdout files, and gives its exit code.
func run(t *testing.T, path string, args []string, stdin, stdout *os.File) (int, string) {
	t.Helper()
	cmd := exec.Command("tar", args...)
	cmd.Env = append(os.Environ(), "PATH="+path)
	for _, d := range filepath.SplitList(path) {
		if p := filepath.Join(d, "tar"); fileExists(p) {
			cmd.Path = p
			break
		}
	}
	var errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), errb.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, errb.String()
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func openFile(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func createFile(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// CRIU's two runs over an ordinary tree: done in-process (GNU tar never
// runs), and the archive is readable by GNU tar with the same members.
func TestCRIUsRunsNeedNoGNUTar(t *testing.T) {
	fake, marker := fakeGNUTar(t)
	_, path := install(t, fake)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o640); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "tmpfs-dev-1.tar.gz.img")
	if code, stderr := run(t, path, criuCreate, openFile(t, src), createFile(t, img)); code != 0 {
		t.Fatalf("create: exit %d: %s", code, stderr)
	}
	dst := t.TempDir()
	if code, stderr := run(t, path, criuExtract(dst), openFile(t, img), nil); code != 0 {
		t.Fatalf("extract: exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(b) != "data" {
		t.Errorf("extracted f: %q, %v", b, err)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Errorf("GNU tar ran for CRIU's runs: %q", b)
	}
	out, err := exec.Command("tar", "-tzf", img).CombinedOutput()
	if err != nil || string(out) != "./\n./f\n" {
		t.Errorf("GNU tar -tzf of the image: %q, %v; want ./ and ./f", out, err)
	}
}

// Any other argument list is GNU tar's, unchanged: same output and status.
func TestOtherRunsAreGNUTars(t *testing.T) {
	bin, path := install(t, "")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "a.tar.gz")
	if out, err := exec.Command("tar", "-czf", img, "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	for _, args := range [][]string{{"--version"}, {"-tvzf", img}, {"-tzf", "/nonexistent.tar.gz"}, {"--no-such-option"}} {
		var want, got bytes.Buffer
		gnu := exec.Command("tar", args...)
		gnu.Stdout, gnu.Stderr = &want, &want
		gnuErr := gnu.Run()
		ours := exec.Command(filepath.Join(bin, "tar"), args...)
		ours.Env = append(os.Environ(), "PATH="+path)
		ours.Stdout, ours.Stderr = &got, &got
		oursErr := ours.Run()
		if got.String() != want.String() || exitCode(oursErr) != exitCode(gnuErr) {
			t.Errorf("tar %q: %q exit %d; GNU tar: %q exit %d", args, got.String(), exitCode(oursErr), want.String(), exitCode(gnuErr))
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// An archive the program does not extract itself (hostile names, a
// symlink written through) is GNU tar's to extract: the result, inside and
// outside the directory, and the exit status are GNU tar's.
func TestExtractFallsBackToGNUTar(t *testing.T) {
	_, path := install(t, "")
	for _, c := range []struct {
		name    string
		members []tar.Header
	}{
		{"a name climbing out", []tar.Header{{Name: "./ok", Typeflag: tar.TypeReg}, {Name: "../../escaped", Typeflag: tar.TypeReg}}},
		{"an absolute name", []tar.Header{{Name: "/abs/escaped", Typeflag: tar.TypeReg}}},
		{"a write through a symlink", []tar.Header{{Name: "./l", Typeflag: tar.TypeSymlink, Linkname: "../.."}, {Name: "./l/escaped", Typeflag: tar.TypeReg}}},
		{"a member over an earlier one", []tar.Header{{Name: "./f", Typeflag: tar.TypeReg}, {Name: "./f", Typeflag: tar.TypeSymlink, Linkname: "x"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(img, archive(t, c.members), 0o600); err != nil {
				t.Fatal(err)
			}
			outcome := func(path string) string {
				top := t.TempDir()
				dir := filepath.Join(top, "a", "b")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				code, _ := run(t, path, criuExtract(dir), openFile(t, img), nil)
				return fmt.Sprintf("exit %d\n%s", code, tree(t, top))
			}
			want := outcome(os.Getenv("PATH"))
			if got := outcome(path); got != want {
				t.Errorf("the program:\n%s\nGNU tar:\n%s", got, want)
			}
		})
	}
}

// A tree the program does not archive itself (a socket) is GNU tar's to
// archive: the image (truncated first) lists the same members, and GNU tar
// skips the socket.
func TestCreateFallsBackToGNUTar(t *testing.T) {
	_, path := install(t, "")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	listingOf := func(path string) string {
		img := filepath.Join(t.TempDir(), "img")
		code, _ := run(t, path, criuCreate, openFile(t, src), createFile(t, img))
		out, err := exec.Command("tar", "-tzf", img).CombinedOutput()
		if err != nil {
			t.Fatalf("GNU tar -tzf: %v %s", err, out)
		}
		return fmt.Sprintf("exit %d\n%s", code, out)
	}
	want := listingOf(os.Getenv("PATH"))
	if !strings.Contains(want, "./f") || strings.Contains(want, "sock") {
		t.Fatalf("GNU tar's listing %q: expected f without the socket", want)
	}
	if got := listingOf(path); got != want {
		t.Errorf("the program:\n%s\nGNU tar:\n%s", got, want)
	}
}

func archive(t *testing.T, members []tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range members {
		h.Mode, h.ModTime, h.Format = 0o644, time.Unix(1700000000, 0), tar.FormatGNU
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "x"
			h.Size = 1
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// tree lists every path under top with its type and link target.
func tree(t *testing.T, top string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(top, p)
		target, _ := os.Readlink(p)
		lines = append(lines, fmt.Sprintf("%s %v %s", rel, d.Type(), target))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
