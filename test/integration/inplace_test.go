//go:build integration

package integration

import (
	"context"
	"crypto/sha256"
	"fmt"
	"github.com/docker/docker/client"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/faas-criu/faas-criu/provider"
	dockereng "github.com/faas-criu/faas-criu/provider/docker"
)

// inPlaceBox is an Init container of the fixture joined to a sandbox, as
// the provider creates them, driven through the Docker engine
// implementation itself (the provider half of in-place hibernation lives on
// another branch).
type inPlaceBox struct {
	t       *testing.T
	eng     *dockereng.Engine
	id, sb  string
	ip      string
	network string
	tmp     string
}

func newInPlaceBox(t *testing.T, name string) *inPlaceBox {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	initBin := buildInit(t)
	eng, err := dockereng.New(dockereng.WithInit(initBin), dockereng.WithInitBase(filepath.Join(tmp, "init")))
	if err != nil {
		t.Fatal(err)
	}
	info, err := eng.Info(ctx)
	if err != nil || !info.InPlace {
		t.Fatalf("engine info %+v, %v: want InPlace", info, err)
	}
	b := &inPlaceBox{t: t, eng: eng, tmp: tmp, network: "ipeng-it", ip: "10.63.251.10"}
	if _, err := eng.InspectNetwork(ctx, b.network); err != nil {
		if err := eng.CreateNetwork(ctx, b.network, provider.NetworkInfo{Subnet: "10.63.251.0/24", Gateway: "10.63.251.1"}); err != nil {
			t.Fatalf("network: %v", err)
		}
		// Registered first, so it runs after the containers' removal.
		t.Cleanup(func() {
			if err := docker.NetworkRemove(context.Background(), b.network); err != nil && !client.IsErrNotFound(err) {
				t.Errorf("remove network %s: %v", b.network, err)
			}
		})
	}
	b.sb = b.create(provider.ContainerSpec{Name: name + "-sb", Image: FixtureImage, Env: []string{"LISTEN=:9999"},
		Network: b.network, IP: b.ip})
	runtime := ""
	if slices.Contains(info.Runtimes, provider.CRIURuntime) {
		runtime = provider.CRIURuntime
	}
	b.id = b.create(provider.ContainerSpec{Name: name, Image: FixtureImage, NetworkOf: b.sb, Init: true, Runtime: runtime,
		Resources: provider.Resources{Memory: 64 << 20, MemorySwap: 64 << 20}})
	t.Cleanup(func() {
		for _, id := range []string{b.id, b.sb} {
			_ = eng.RemoveContainer(context.Background(), id)
		}
		eng.Close()
	})
	for _, id := range []string{b.sb, b.id} {
		if err := eng.StartContainer(ctx, id); err != nil {
			t.Fatalf("start: %v", err)
		}
	}
	b.waitServing()
	return b
}

func (b *inPlaceBox) create(s provider.ContainerSpec) string {
	b.t.Helper()
	_ = b.eng.RemoveContainer(context.Background(), s.Name)
	id, err := b.eng.CreateContainer(context.Background(), s)
	if err != nil {
		b.t.Fatalf("create %s: %v", s.Name, err)
	}
	return id
}

func (b *inPlaceBox) get(path string) (string, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + b.ip + ":8080" + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(out)), err
}

func (b *inPlaceBox) count() int {
	b.t.Helper()
	s, err := b.get("/count")
	n, cerr := strconv.Atoi(s)
	if err != nil || cerr != nil {
		b.t.Fatalf("/count: %q, %v", s, err)
	}
	return n
}

func (b *inPlaceBox) waitServing() {
	b.t.Helper()
	eventually(b.t, 10*time.Second, func() string {
		if _, err := b.get("/_/health"); err != nil {
			return err.Error()
		}
		return ""
	})
}

func (b *inPlaceBox) inspect() container.InspectResponse {
	b.t.Helper()
	ci, err := docker.ContainerInspect(context.Background(), b.id)
	if err != nil {
		b.t.Fatal(err)
	}
	return ci
}

// top is what `docker top` lists: the commands of the container's processes.
func (b *inPlaceBox) top() []string {
	b.t.Helper()
	top, err := docker.ContainerTop(context.Background(), b.id, nil)
	if err != nil {
		b.t.Fatalf("docker top: %v", err)
	}
	i := slices.Index(top.Titles, "CMD")
	var cmds []string
	for _, p := range top.Processes {
		cmds = append(cmds, p[i])
	}
	return cmds
}

// memoryUsage is the container's memory cgroup usage in bytes.
func (b *inPlaceBox) memoryUsage() int64 {
	b.t.Helper()
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", b.inspect().State.Pid))
	if err != nil {
		b.t.Fatal(err)
	}
	for _, l := range strings.Split(string(cg), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "memory") {
			v, err := os.ReadFile("/sys/fs/cgroup/memory" + f[2] + "/memory.usage_in_bytes")
			if err != nil {
				b.t.Fatal(err)
			}
			n, _ := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
			return n
		}
	}
	b.t.Fatal("no memory cgroup")
	return 0
}

func (b *inPlaceBox) running() bool {
	b.t.Helper()
	ok, err := b.eng.InPlaceRunning(context.Background(), b.id)
	if err != nil {
		b.t.Fatalf("InPlaceRunning: %v", err)
	}
	return ok
}

func (b *inPlaceBox) dump(dir string) time.Duration {
	b.t.Helper()
	t0 := time.Now()
	if err := b.eng.DumpInPlace(context.Background(), b.id, dir); err != nil {
		b.t.Fatalf("DumpInPlace: %v", err)
	}
	return time.Since(t0)
}

// restore restores and returns the time to the first byte of a /count.
func (b *inPlaceBox) restore(dir string) (time.Duration, int) {
	b.t.Helper()
	t0 := time.Now()
	if err := b.eng.RestoreInPlace(context.Background(), b.id, dir); err != nil {
		b.t.Fatalf("RestoreInPlace: %v", err)
	}
	n := b.count()
	return time.Since(t0), n
}

// TestInPlaceSession: a function container under faas-criu-init is
// hibernated and woken in place; Docker sees it Up throughout, its logs go
// on, an engine-restart-like stop and start keeps the hibernation, a
// corrupted dump fails without harm, and `docker stop` leaves nothing.
func TestInPlaceSession(t *testing.T) {
	b := newInPlaceBox(t, "ipeng-session")
	for want := 1; want <= 2; want++ {
		if got := b.count(); got != want {
			t.Fatalf("/count = %d, want %d", got, want)
		}
	}
	if !b.running() {
		t.Fatal("InPlaceRunning false while the function serves")
	}
	// A dump that cannot write its directory fails and leaves the function
	// serving, with no marker left (its later exit would be taken for a
	// hibernation).
	if err := b.eng.DumpInPlace(context.Background(), b.id, "/proc/no-such-dir/dump"); err == nil {
		t.Fatal("a dump into /proc succeeded")
	}
	if got := b.count(); got != 3 || !b.running() {
		t.Fatalf("after a failed dump /count = %d (want 3), InPlaceRunning %v", got, b.running())
	}
	if m, _ := filepath.Glob(filepath.Join(b.tmp, "init", "*", "c", "hibernated")); len(m) > 0 {
		t.Fatalf("a failed dump left the marker %v", m)
	}
	awake := b.memoryUsage()
	dir := filepath.Join(b.tmp, "dump1")
	b.dump(dir)
	if st := b.inspect().State; !st.Running {
		t.Fatalf("after the dump Docker says %+v, want running", st)
	}
	if top := b.top(); len(top) != 1 || !strings.Contains(top[0], "faas-criu-init") && !strings.Contains(top[0], "/.faas-criu/init") {
		t.Fatalf("docker top while hibernated: %q, want only the init", top)
	}
	if b.running() {
		t.Fatal("InPlaceRunning true while hibernated")
	}
	if asleep := b.memoryUsage(); asleep >= awake {
		t.Errorf("memory cgroup usage %d while hibernated, not below %d awake", asleep, awake)
	} else {
		t.Logf("memory cgroup usage: awake %d KiB, hibernated %d KiB", awake>>10, asleep>>10)
	}
	if _, n := b.restore(dir); n != 4 {
		t.Fatalf("after the restore /count = %d, want 4", n)
	}
	if !b.running() || len(b.top()) != 2 {
		t.Fatalf("after the restore: InPlaceRunning %v, docker top %q", b.running(), b.top())
	}
	line := fmt.Sprintf("printed-after-restore-%d", time.Now().UnixNano())
	if _, err := b.get("/log?line=" + line); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if logs := b.logs(); !strings.Contains(logs, line) {
			return "docker logs lacks the line printed after the restore"
		}
		return ""
	})
	b.restartedWhileHibernated(filepath.Join(b.tmp, "dump2"), 5)
	b.failedRestore(filepath.Join(b.tmp, "dump3"))
	b.restoredExitEndsContainer(filepath.Join(b.tmp, "dump5"))
	b.stopLeavesNothing()
	// The init's directory goes with its container.
	if dirs, _ := filepath.Glob(filepath.Join(b.tmp, "init", "*")); len(dirs) != 1 {
		t.Fatalf("init directories before the removal: %v, want one", dirs)
	}
	if err := b.eng.RemoveContainer(context.Background(), b.id); err != nil {
		t.Fatal(err)
	}
	if dirs, _ := filepath.Glob(filepath.Join(b.tmp, "init", "*")); len(dirs) != 0 {
		t.Fatalf("init directories left after the container's removal: %v", dirs)
	}
}

func (b *inPlaceBox) logs() string {
	b.t.Helper()
	rc, err := b.eng.ContainerLogs(context.Background(), b.id, provider.LogsOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	defer rc.Close()
	out, _ := io.ReadAll(rc)
	return string(out)
}

// restartedWhileHibernated: the containers stop while the function is
// hibernated (an engine restart, the deep tier); the restore starts the
// function container again, its init waiting instead of starting afresh.
func (b *inPlaceBox) restartedWhileHibernated(dir string, want int) {
	t := b.t
	ctx := context.Background()
	b.dump(dir)
	for _, id := range []string{b.id, b.sb} {
		if err := b.eng.StopContainer(ctx, id, 5*time.Second); err != nil {
			t.Fatalf("stop: %v", err)
		}
	}
	if err := b.eng.StartContainer(ctx, b.sb); err != nil {
		t.Fatal(err)
	}
	if _, n := b.restore(dir); n != want {
		t.Fatalf("restored into a started-again container: /count = %d, want %d", n, want)
	}
}

// failedRestore: a corrupted dump fails to restore; the dump is left as it
// was and the container up with no function; DropInPlace and a restart
// start the function afresh.
func (b *inPlaceBox) failedRestore(dir string) {
	t := b.t
	ctx := context.Background()
	b.dump(dir)
	cores, _ := filepath.Glob(filepath.Join(dir, "core-*.img"))
	if len(cores) == 0 {
		t.Fatalf("no core image in %s", dir)
	}
	if err := os.WriteFile(cores[0], []byte("corrupted"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := treeSum(t, dir)
	err := b.eng.RestoreInPlace(ctx, b.id, dir)
	if err == nil {
		t.Fatal("a corrupted dump restored")
	}
	t.Logf("failed restore, as wanted: %v", err)
	if after := treeSum(t, dir); after != before {
		t.Errorf("the failed restore changed the dump directory")
	}
	if !b.inspect().State.Running || b.running() {
		t.Fatalf("after a failed restore: container running %v (want true), function %v (want false)", b.inspect().State.Running, b.running())
	}
	if err := b.eng.DropInPlace(ctx, b.id); err != nil {
		t.Fatal(err)
	}
	if err := b.eng.StopContainer(ctx, b.id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.eng.StartContainer(ctx, b.id); err != nil {
		t.Fatal(err)
	}
	b.waitServing()
	if n := b.count(); n != 1 {
		t.Fatalf("after DropInPlace and a restart /count = %d, want 1 (afresh)", n)
	}
}

// treeSum is a digest of a directory's names and contents.
func treeSum(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		fmt.Fprintf(h, "%s %x\n", p, sha256.Sum256(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// restoredExitEndsContainer: a restored function (not the init's child)
// that ends on its own ends the container with its status, as a function
// never hibernated does.
func (b *inPlaceBox) restoredExitEndsContainer(dir string) {
	t := b.t
	ctx := context.Background()
	b.dump(dir)
	b.restore(dir)
	init := b.inspect().State.Pid
	var fn int
	for _, p := range strings.Fields(readProcChildren(init)) {
		fn, _ = strconv.Atoi(p)
	}
	if fn != 0 {
		t.Fatalf("the restored function is the init's child (%d): it should be the restorer's", fn)
	}
	fn = b.functionPid()
	if err := syscall.Kill(fn, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := b.eng.WaitStopped(ctx, b.id); err != nil {
		t.Fatal(err)
	}
	if code := b.inspect().State.ExitCode; code != 128+int(syscall.SIGTERM) {
		t.Fatalf("container exit code %d after its restored function died of SIGTERM, want %d", code, 128+int(syscall.SIGTERM))
	}
	if err := b.eng.StartContainer(ctx, b.id); err != nil {
		t.Fatal(err)
	}
	b.waitServing()
}

// functionPid is the host pid of the container's process that is not its
// init.
func (b *inPlaceBox) functionPid() int {
	b.t.Helper()
	top, err := docker.ContainerTop(context.Background(), b.id, []string{"-o", "pid,args"})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, p := range top.Processes {
		if !strings.Contains(p[1], "/.faas-criu/init") {
			pid, _ := strconv.Atoi(p[0])
			return pid
		}
	}
	b.t.Fatalf("no function in docker top %v", top.Processes)
	return 0
}

func readProcChildren(pid int) string {
	ts, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var all string
	for _, t := range ts {
		b, _ := os.ReadFile(t)
		all += string(b) + " "
	}
	return all
}

// stopLeavesNothing: after a restore, `docker stop` ends the function too:
// no process is left in the container's pid namespace.
func (b *inPlaceBox) stopLeavesNothing() {
	t := b.t
	dir := filepath.Join(b.tmp, "dump4")
	b.dump(dir)
	b.restore(dir)
	init := b.inspect().State.Pid
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := b.eng.StopContainer(context.Background(), b.id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("docker stop of a restored function's container: %v", time.Since(t0).Round(time.Millisecond))
	if left := inNamespace(ns); len(left) > 0 {
		t.Fatalf("after docker stop, processes left in the container's pid namespace: %v", left)
	}
}

func inNamespace(ns string) []string {
	var left []string
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/pid")
	for _, p := range procs {
		if l, err := os.Readlink(p); err == nil && l == ns {
			left = append(left, strings.Split(p, "/")[2])
		}
	}
	return left
}

// TestInPlaceTimes measures dump and restore-to-first-byte over cycles
// (FAAS_CRIU_TEST_INPLACE_CYCLES, default 10), and the init's memory.
func TestInPlaceTimes(t *testing.T) {
	b := newInPlaceBox(t, "ipeng-times")
	n := 10
	if v, err := strconv.Atoi(os.Getenv("FAAS_CRIU_TEST_INPLACE_CYCLES")); err == nil && v > 0 {
		n = v
	}
	b.count()
	var dumps, wakes []time.Duration
	for i := range n {
		dir := filepath.Join(b.tmp, fmt.Sprint("d", i))
		dumps = append(dumps, b.dump(dir))
		d, got := b.restore(dir)
		wakes = append(wakes, d)
		if got != i+2 {
			t.Fatalf("cycle %d: /count = %d, want %d", i, got, i+2)
		}
		os.RemoveAll(dir)
	}
	init := b.inspect().State.Pid
	rollup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", init))
	t.Logf("in place, %d cycles: dump median %v (min %v max %v); restore to first byte median %v (min %v max %v)",
		n, median(dumps), slices.Min(dumps), slices.Max(dumps), median(wakes), slices.Min(wakes), slices.Max(wakes))
	t.Logf("init pid %d: %s", init, strings.Join(pick(string(rollup), "Rss:", "Pss:", "Private_Clean:", "Private_Dirty:"), "; "))
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		t.Logf("load average: %s", strings.TrimSpace(string(load)))
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func pick(s string, keys ...string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, k := range keys {
			if strings.HasPrefix(l, k) {
				out = append(out, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return out
}

// TestInPlaceAfterProviderRestart: the process that restored a function
// (its parent) exits, as a provider restarting; the function serves on,
// then its next dump leaves a zombie for the host's init to reap, and the
// restore after waits for its pid instead of failing ("File exists").
func TestInPlaceAfterProviderRestart(t *testing.T) {
	b := newInPlaceBox(t, "ipeng-orphan")
	b.count()
	dir := filepath.Join(b.tmp, "o1")
	b.dump(dir)
	helper := filepath.Join(b.tmp, "restorer")
	if err := goBuild(helper, "./test/inplacerestorer"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(helper, b.id, dir, filepath.Join(b.tmp, "faas-criu-init"), filepath.Join(b.tmp, "init")).CombinedOutput()
	if err != nil {
		t.Fatalf("restore by another process: %v\n%s", err, out)
	}
	if n := b.count(); n != 2 {
		t.Fatalf("after a restore by a process that exited since, /count = %d, want 2", n)
	}
	b.dump(filepath.Join(b.tmp, "o2"))
	w, n := b.restore(filepath.Join(b.tmp, "o2"))
	if n != 3 {
		t.Fatalf("restore after the orphan's dump: /count = %d, want 3", n)
	}
	t.Logf("restore to first byte while the host's init reaped the orphan's zombie: %v", w)
}
