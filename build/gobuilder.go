package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/docker/docker/client"
)

// goToolchain is an installed Go: its GOROOT and version ("1.26.8").
type goToolchain struct{ root, version string }

// installedGo is the Go toolchain on this machine: the go in $PATH, or
// /usr/local/go.
var installedGo = sync.OnceValues(func() (goToolchain, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	out, err := exec.Command(goBin, "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		return goToolchain{}, fmt.Errorf("no Go toolchain found (%s env: %v)", goBin, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] == "" {
		return goToolchain{}, fmt.Errorf("%s env: unexpected output %q", goBin, out)
	}
	return goToolchain{root: lines[0], version: strings.TrimPrefix(lines[1], "go")}, nil
})

var badTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func goBuilderImage() (*baseImage, error) {
	gt, err := installedGo()
	if err != nil {
		return nil, err
	}
	tag := badTagChars.ReplaceAllString(gt.version, "-")
	return &baseImage{
		Ref:  "faas-criu/go-builder:" + tag,
		what: "static busybox and the Go toolchain in " + gt.root,
		make: func(ctx context.Context, cli client.APIClient, out io.Writer) error {
			return makeGoBuilder(ctx, cli, "faas-criu/go-builder:"+tag, gt, out)
		},
	}, nil
}

// makeGoBuilder imports a root filesystem of a static busybox (its applets
// as symlinks) and a copy of the Go toolchain at /usr/local/go, without its
// tests, API lists, docs and testdata.
func makeGoBuilder(ctx context.Context, cli client.APIClient, ref string, gt goToolchain, out io.Writer) error {
	bb, err := staticBusybox(out)
	if err != nil {
		return err
	}
	list, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("%s --list-full: %w", bb, err)
	}
	skipGo := func(rel string) bool {
		switch rel {
		case "test", "api", "doc", "pkg/obj", ".git":
			return true
		}
		return strings.HasPrefix(rel, "src/") && filepath.Base(rel) == "testdata"
	}
	changes := []string{
		"ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"ENV HOME=/root",
		"ENV GOPATH=/go",
		"ENV GOCACHE=/tmp/gocache",
		"ENV CGO_ENABLED=0",
		"ENV GOTOOLCHAIN=local",
		"ENV GOPROXY=off",
		"ENV GOFLAGS=-mod=mod",
		"LABEL io.faas-criu.base=go-builder io.faas-criu.go-version=" + gt.version,
		`CMD ["/bin/sh"]`,
	}
	return importRootfs(ctx, cli, ref, changes, func(w io.Writer) error {
		r := newRootfsWriter(w)
		for _, d := range []struct {
			name string
			mode int64
		}{{"bin", 0o755}, {"etc", 0o755}, {"root", 0o700}, {"tmp", 0o1777}, {"go", 0o1777}, {"usr/local", 0o755}} {
			if err := r.dir(d.name, d.mode, 0, 0); err != nil {
				return err
			}
		}
		files := map[string]string{
			"etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
			"etc/group":    "root:x:0:\nnogroup:x:65534:\n",
			"etc/hostname": "",
		}
		for name, content := range files {
			if err := r.file(name, 0o644, []byte(content)); err != nil {
				return err
			}
		}
		data, err := os.ReadFile(bb)
		if err != nil {
			return err
		}
		if err := r.file("bin/busybox", 0o755, data); err != nil {
			return err
		}
		for _, applet := range strings.Fields(string(list)) {
			applet = strings.TrimPrefix(applet, "/")
			if applet == "bin/busybox" || strings.Contains(applet, "..") {
				continue
			}
			if err := r.symlink(applet, "/bin/busybox"); err != nil {
				return err
			}
		}
		if err := r.tree(gt.root, "usr/local/go", skipGo); err != nil {
			return err
		}
		return r.Close()
	})
}
