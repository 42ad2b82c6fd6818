//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"golang.org/x/sys/unix"
)

// tarRuntime installs what setup installs for the engine runtime faas-criu,
// in a directory of the test's own: faas-criu-tar as bin/tar, and the
// script runc is given as its CRIU, which puts bin first on CRIU's PATH.
func tarRuntime(t *testing.T) (script string) {
	t.Helper()
	criu, err := exec.LookPath("criu")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := goBuild(filepath.Join(dir, "bin", "tar"), "./cmd/faas-criu-tar"); err != nil {
		t.Fatalf("go build faas-criu-tar: %v", err)
	}
	script = filepath.Join(dir, "criu")
	body := fmt.Sprintf("#!/bin/sh\nPATH=%s:$PATH exec %s \"$@\"\n", filepath.Join(dir, "bin"), criu)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// engineWithCRIU restarts the second engine with (criu a path) or without
// (criu "none") the faas-criu runtime.
func engineWithCRIU(t *testing.T, criu string) {
	t.Helper()
	SecondEngine(t)
	for _, cmd := range []string{"stop", "start"} {
		c := exec.Command(filepath.Join(repoRoot, "scripts", "second-engine.sh"), cmd, engineName)
		c.Env = append(os.Environ(), "FAAS_CRIU_ENGINE_CRIU="+criu)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("second-engine.sh %s: %v\n%s", cmd, err, out)
		}
	}
}

func offersRuntime(t *testing.T, engine *client.Client) bool {
	t.Helper()
	info, err := engine.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, ok := info.Runtimes["faas-criu"]
	return ok
}

// TestTmpfsWithoutGNUTar is a user's session across two boxes, one whose
// engine offers the faas-criu runtime (its CRIU archives the container's
// tmpfs mounts with faas-criu-tar) and one that does not (GNU tar): deploy
// with faas-cli on the stock box, write to /dev/shm, migrate to the other
// box (a GNU tar checkpoint restored with faas-criu-tar), hibernate and wake
// there (faas-criu-tar both ways), then migrate back (the reverse). The
// count goes on at every step, /dev/shm keeps the file, /dev/null and
// /dev/urandom work, /sys/firmware and /proc/acpi stay empty and read-only,
// and docker inspect names the runtime on the box that offers it.
func TestTmpfsWithoutGNUTar(t *testing.T) {
	script := tarRuntime(t)
	// The second box is made the opposite of the first (whose engine setup
	// may have given the runtime or not).
	aHas := offersRuntime(t, docker)
	if aHas {
		engineWithCRIU(t, "none")
	} else {
		engineWithCRIU(t, script)
		t.Cleanup(func() { engineWithCRIU(t, "none") }) // before the script's directory goes
	}
	a, b, env := twoBoxes(t)
	LoadImageOnB(t, FixtureImage)
	if offersRuntime(t, dockerB) == aHas {
		t.Fatalf("both engines offer the runtime or neither does (first: %v)", aHas)
	}
	stock, fast := a, b
	if aHas {
		stock, fast = b, a
	}
	const fn = "shm"
	cmd := exec.Command(faasCLI(t), "deploy", "--image", FixtureImage, "--name", fn, "--gateway", stock.URL)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "CI=true", "HOME="+cmd.Dir, env[0])
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("faas-cli deploy: %v\n%s", err, out)
	}
	stock.WaitAvailable(fn, 1)
	if got := nextCount(t, stock, fn); got != 1 {
		t.Fatalf("first /count = %d", got)
	}
	if got := stock.MustInvoke(fn, "/write?path=/dev/shm/kept"); got != "ok" {
		t.Fatalf("writing /dev/shm/kept: %q", got)
	}
	if rt := runtimeOf(t, stock, fn); rt == "faas-criu" {
		t.Errorf("the stock box created the function with runtime %q", rt)
	}

	migrate(t, env, stock, fast, fn) // GNU tar's images, restored by faas-criu-tar
	if got := nextCount(t, fast, fn); got != 2 {
		t.Errorf("after the migration to the faas-criu box /count = %d, want 2", got)
	}
	if rt := runtimeOf(t, fast, fn); rt != "faas-criu" {
		t.Errorf("docker inspect: runtime %q, want faas-criu", rt)
	}
	tmpfsIntact(t, fast, fn)

	fast.Scale(fn, 0) // hibernate: faas-criu-tar archives
	fast.WaitState(fn, "hibernated", 30*time.Second)
	tarImagesBy(t, fast, fn, "faas-criu-tar")
	if got := nextCount(t, fast, fn); got != 3 {
		t.Errorf("after the wake /count = %d, want 3", got)
	}
	tmpfsIntact(t, fast, fn)

	migrate(t, env, fast, stock, fn) // faas-criu-tar's images, restored by GNU tar
	if got := nextCount(t, stock, fn); got != 4 {
		t.Errorf("after the migration back /count = %d, want 4", got)
	}
	tmpfsIntact(t, stock, fn)
	stock.Delete(fn)
}

// migrate moves fn from one box to the other with the client's migrate.
func migrate(t *testing.T, env []string, from, to *Provider, fn string) {
	t.Helper()
	env = append(append([]string{}, env...), "OPENFAAS_URL="+from.URL)
	if out, err := Run(t, env, "migrate", fn, "--to", to.URL); err != nil {
		t.Fatalf("migrate to %s: %v\n%s", to.URL, err, out)
	}
}

func runtimeOf(t *testing.T, p *Provider, fn string) string {
	t.Helper()
	c := p.Containers(fn)
	if len(c) != 1 {
		t.Fatalf("%d containers for %s", len(c), fn)
	}
	ci, err := p.engine.ContainerInspect(context.Background(), c[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return ci.HostConfig.Runtime
}

// tarImagesBy checks who wrote the hibernated function's tmpfs images: the
// gzip header's OS byte is 0xff ("unknown") for faas-criu-tar, 3 (Unix) for
// GNU gzip.
func tarImagesBy(t *testing.T, p *Provider, fn, want string) {
	t.Helper()
	dirs := p.CheckpointDirs(fn)
	if len(dirs) == 0 {
		t.Fatalf("no checkpoint of %s", fn)
	}
	imgs, _ := filepath.Glob(filepath.Join(dirs[0], "tmpfs-dev-*.tar.gz.img"))
	if len(imgs) < 5 {
		t.Fatalf("%d tmpfs images in %s, want the five mounts'", len(imgs), dirs[0])
	}
	for _, img := range imgs {
		b, err := os.ReadFile(img)
		if err != nil || len(b) < 10 {
			t.Fatalf("%s: %v", img, err)
		}
		by := map[byte]string{0xff: "faas-criu-tar", 3: "GNU tar"}[b[9]]
		if by != want {
			t.Errorf("%s written by %q, want %s", filepath.Base(img), by, want)
		}
	}
}

// tmpfsIntact checks the running function's tmpfs mounts: the file it wrote
// to /dev/shm is there, /dev/null and /dev/urandom are its devices and
// writable, /sys/firmware and /proc/acpi are empty and read-only.
func tmpfsIntact(t *testing.T, p *Provider, fn string) {
	t.Helper()
	c := p.Containers(fn)
	if len(c) != 1 {
		t.Fatalf("%d containers for %s", len(c), fn)
	}
	ci, err := p.engine.ContainerInspect(context.Background(), c[0].ID)
	if err != nil || ci.State == nil || ci.State.Pid == 0 {
		t.Fatalf("inspect %s: %v", fn, err)
	}
	root := fmt.Sprintf("/proc/%d/root", ci.State.Pid)
	if _, err := os.Stat(root + "/dev/shm/kept"); err != nil {
		t.Errorf("/dev/shm/kept: %v", err)
	}
	for dev, num := range map[string][2]uint32{"/dev/null": {1, 3}, "/dev/urandom": {1, 9}} {
		var st unix.Stat_t
		if err := unix.Stat(root+dev, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR ||
			unix.Major(st.Rdev) != num[0] || unix.Minor(st.Rdev) != num[1] || st.Mode&0o777 != 0o666 {
			t.Errorf("%s: mode %o dev %d,%d (%v)", dev, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), err)
		}
		if got := p.MustInvoke(fn, "/write?path="+dev); got != "ok" {
			t.Errorf("the function writing %s: %q", dev, got)
		}
	}
	for _, dir := range []string{"/sys/firmware", "/proc/acpi"} {
		if entries, err := os.ReadDir(root + dir); err != nil || len(entries) != 0 {
			t.Errorf("%s: %d entries (%v), want empty", dir, len(entries), err)
		}
		if got := p.MustInvoke(fn, "/write?path="+dir+"/x"); !strings.Contains(got, "read-only file system") {
			t.Errorf("the function writing in %s: %q, want read-only file system", dir, got)
		}
	}
}
