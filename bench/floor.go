package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"golang.org/x/sys/unix"

	"github.com/faas-criu/faas-criu/test/harness"
)

// The floor phase (issue 13): where a wake or suspend target is not met,
// the report must show what stops it, measured in the same run. It times
// the same fixture binary, with the same environment as the wake phase's
// two kinds,
//
//   - under CRIU alone, outside Docker: `criu dump` of the process, then
//     `criu restore -d` of its images (the least any CRIU-based wake costs);
//   - in a plain Docker container: `docker checkpoint create` and `docker
//     start --checkpoint` through the API (Docker's own path, without the
//     provider, its sandbox or its bookkeeping);
//
// and the cold start of the trivial fixture by the engine's containerd
// directly (ctrdirect.go), the bar issue 13 sets the trivial wake against.
//
// Each restore is followed by a /count call that must go on from the last.

// floorFigures are one kind's samples.
type floorFigures struct {
	CRIUDump, CRIURestore, CRIUFirstByte       []time.Duration // restore: criu's own run; first byte: from the restore's start
	DockerDump, DockerRestore, DockerFirstByte []time.Duration // ContainerStart with the checkpoint; first byte: from its start
}

// floorResult is the phase's outcome, by wake kind.
type floorResult struct {
	Samples int // Docker alone
	// CRIUSamples is CRIU alone's (criuSamples).
	CRIUSamples int
	Kinds       map[string]*floorFigures
	Failures    []string // CRIU alone and Docker alone
	// Containerd is the trivial fixture's cold start by containerd
	// directly, unless ContainerdErr says why not.
	Containerd    *ctrdFigures
	ContainerdErr string
}

// allFailures are the phase's failures, the containerd-direct one too.
func (r *floorResult) allFailures() []string {
	if r.ContainerdErr == "" {
		return r.Failures
	}
	return append(slices.Clone(r.Failures), "trivial, cold start by containerd directly: "+r.ContainerdErr)
}

// containerdCold is the containerd-direct cold start's median, if measured.
func (r *floorResult) containerdCold() (cold, ctrOwn time.Duration, ok bool) {
	c := r.Containerd
	if c == nil || len(c.ColdStart) == 0 || r.ContainerdErr != "" {
		return 0, 0, false
	}
	return DurMedian(c.ColdStart), DurMedian(c.CtrOverhead), true
}

// runFloor measures each kind samples times under CRIU alone and in Docker,
// alternated.
func (b *bench) runFloor(ctx context.Context, netName string, samples int) (*floorResult, error) {
	bin := filepath.Join(b.logDir, "fixture-floor")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s", "-o", bin, "./test/fixture")
	cmd.Dir, cmd.Env = b.root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("floor: go build ./test/fixture: %w\n%s", err, out)
	}
	res := &floorResult{Samples: samples, CRIUSamples: criuSamples(samples), Kinds: map[string]*floorFigures{}}
	for _, k := range wakeKinds {
		b.progress("floor: %s, CRIU alone (%d samples) and docker checkpoint (%d)", k.Kind, res.CRIUSamples, samples)
		f := &floorFigures{}
		res.Kinds[k.Kind] = f
		if err := b.floorCRIU(ctx, bin, k.Env, res.CRIUSamples, f); err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("%s, CRIU alone: %v", k.Kind, err))
		}
		b.progress("floor: %s, CRIU alone, dump of each sample: %s; restore: %s", k.Kind, fmtDurs(f.CRIUDump), fmtDurs(f.CRIURestore))
		if err := b.floorDocker(ctx, netName, k.Env, samples, f); err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("%s, Docker: %v", k.Kind, err))
		}
	}
	n := ctrSamples(samples)
	b.progress("floor: trivial, cold start by containerd directly, %d samples", n)
	var err error
	if res.Containerd, err = b.floorContainerd(ctx, n); err != nil {
		res.ContainerdErr = err.Error()
	}
	return res, nil
}

// criuSamples is how many dumps and restores CRIU alone takes of each kind:
// at least 15 (tried 43). A trivial cycle takes about 60 ms and a heavy one
// about 250 ms, against seconds for Docker's, so more samples cost the
// phase a few seconds; with 3, one slow sample on the shared machine moved
// a median by tens of ms.
func criuSamples(floorSamples int) int { return max(floorSamples, 15) }

// floorCRIU runs the fixture as a host process in its own session and
// dumps and restores it with the criu binary runc uses.
func (b *bench) floorCRIU(ctx context.Context, bin string, env map[string]string, samples int, f *floorFigures) error {
	dir, err := os.MkdirTemp("", "faas-criu-bench-floor-")
	if err != nil {
		return fmt.Errorf("images directory: %w", err)
	}
	defer os.RemoveAll(dir)
	// A restored process is left by `criu restore -d` to its reaper. Being
	// the subreaper, this process reaps each one after the next dump kills
	// it: CRIU restores the same pid, which a zombie would still hold.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become the subreaper: %w", err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	pid, addr, err := startHostFixture(ctx, bin, env)
	if err != nil {
		return err
	}
	defer func() { syscall.Kill(pid, syscall.SIGKILL); syscall.Wait4(pid, nil, 0, nil) }()
	for i := 2; i <= samples+1; i++ {
		if pid, err = criuCycle(ctx, dir, pid, addr, i, f); err != nil {
			return err
		}
	}
	return nil
}

// startHostFixture runs the fixture as a host process in its own session
// on a free loopback port and waits for its first answer. A port found
// free can be taken by another program before the fixture binds it (a
// shared machine's tests open thousands): the fixture then exits, and it
// is started again on another port.
func startHostFixture(ctx context.Context, bin string, env map[string]string) (pid int, addr string, err error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, "", err
	}
	defer devnull.Close()
	for attempt := 1; ; attempt++ {
		port, err := harness.FreePort()
		if err != nil {
			return 0, "", err
		}
		addr = "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(bin)
		cmd.Env = []string{"LISTEN=" + addr}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return 0, "", fmt.Errorf("start the fixture: %w", err)
		}
		pid = cmd.Process.Pid
		err = awaitCountWhile(ctx, addr, 1, 30*time.Second, func() bool {
			got, _ := syscall.Wait4(pid, nil, syscall.WNOHANG, nil)
			return got != pid
		})
		if err == nil {
			return pid, addr, nil
		}
		syscall.Kill(pid, syscall.SIGKILL)
		syscall.Wait4(pid, nil, 0, nil)
		if !errors.Is(err, errExited) || attempt == 3 {
			return 0, "", fmt.Errorf("fixture on %s: %w", addr, err)
		}
	}
}

// criuCycle dumps pid into dir, restores it detached and calls it once;
// it returns the restored process's pid.
func criuCycle(ctx context.Context, dir string, pid int, addr string, want int, f *floorFigures) (int, error) {
	imgs := filepath.Join(dir, strconv.Itoa(want))
	if err := os.MkdirAll(imgs, 0o755); err != nil {
		return pid, err
	}
	start := time.Now()
	if out, err := exec.CommandContext(ctx, "criu", "dump", "-t", strconv.Itoa(pid), "-D", imgs, "-o", "dump.log", "--tcp-established").CombinedOutput(); err != nil {
		return pid, fmt.Errorf("criu dump: %w: %s %s", err, out, logTail(filepath.Join(imgs, "dump.log")))
	}
	f.CRIUDump = append(f.CRIUDump, time.Since(start))
	syscall.Wait4(pid, nil, 0, nil) // CRIU killed it after the dump
	pidFile := filepath.Join(imgs, "restored.pid")
	start = time.Now()
	if out, err := exec.CommandContext(ctx, "criu", "restore", "-d", "-D", imgs, "-o", "restore.log", "--tcp-established", "--pidfile", pidFile).CombinedOutput(); err != nil {
		return pid, fmt.Errorf("criu restore: %w: %s %s", err, out, logTail(filepath.Join(imgs, "restore.log")))
	}
	f.CRIURestore = append(f.CRIURestore, time.Since(start))
	if err := awaitCount(ctx, addr, want, 10*time.Second); err != nil {
		return pid, err
	}
	f.CRIUFirstByte = append(f.CRIUFirstByte, time.Since(start))
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return pid, fmt.Errorf("restored pid: %w", err)
	}
	if pid, err = strconv.Atoi(strings.TrimSpace(string(raw))); err != nil {
		return pid, fmt.Errorf("restored pid %q: %w", raw, err)
	}
	os.RemoveAll(imgs) // the pages of a 100 MB function, every sample
	return pid, nil
}

// removeRestoreCopies removes containerd's unpacked copies of a
// container's checkpoints (/tmp/ctrd-checkpoint*, which containerd 1.6
// leaves after every restore), found by the container's id in cgroup.img.
func removeRestoreCopies(id string) {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), restoreTempGlob))
	for _, d := range matches {
		if cg, err := os.ReadFile(filepath.Join(d, "cgroup.img")); err == nil && strings.Contains(string(cg), id) {
			os.RemoveAll(d)
		}
	}
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return string(b)
}

// floorDocker runs the fixture in a plain container on the benchmark's
// network and times Docker's checkpoint and its start from it.
func (b *bench) floorDocker(ctx context.Context, netName string, env map[string]string, samples int, f *floorFigures) error {
	cfg := &container.Config{Image: fixtureImage, Labels: map[string]string{benchLabel: "floor"}}
	for k, v := range env {
		cfg.Env = append(cfg.Env, k+"="+v)
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {}}}
	c, err := b.docker.ContainerCreate(ctx, cfg, &container.HostConfig{NetworkMode: container.NetworkMode(netName)}, nc, nil, "")
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	b.ids.add(c.ID)
	defer func() {
		b.docker.ContainerRemove(context.WithoutCancel(ctx), c.ID, container.RemoveOptions{Force: true})
		removeRestoreCopies(c.ID) // not the provider's: not counted as its leftovers
	}()
	if err := b.docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	ip, err := containerIP(ctx, b.docker, c.ID, netName)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(ip, "8080")
	if err := awaitCount(ctx, addr, 1, 30*time.Second); err != nil {
		return err
	}
	for i := 2; i <= samples+1; i++ {
		cp := "floor-" + strconv.Itoa(i)
		start := time.Now()
		if err := b.docker.CheckpointCreate(ctx, c.ID, checkpoint.CreateOptions{CheckpointID: cp, Exit: true}); err != nil {
			return fmt.Errorf("docker checkpoint create: %w", err)
		}
		f.DockerDump = append(f.DockerDump, time.Since(start))
		// As the provider does (checkpoint.MetaFile): a checkpoint equal to
		// the blob containerd kept of the dump fails Docker 20.10's restore
		// ("content ... already exists", moby/moby#42900).
		mark := filepath.Join(b.dockerRoot, "containers", c.ID, "checkpoints", cp, "bench-floor")
		if err := os.WriteFile(mark, []byte(cp), 0o600); err != nil {
			return fmt.Errorf("mark the checkpoint: %w", err)
		}
		start = time.Now()
		if err := b.docker.ContainerStart(ctx, c.ID, container.StartOptions{CheckpointID: cp}); err != nil {
			return fmt.Errorf("docker start --checkpoint: %w", err)
		}
		f.DockerRestore = append(f.DockerRestore, time.Since(start))
		if err := awaitCount(ctx, addr, i, 10*time.Second); err != nil {
			return err
		}
		f.DockerFirstByte = append(f.DockerFirstByte, time.Since(start))
		if err := b.docker.CheckpointDelete(ctx, c.ID, checkpoint.DeleteOptions{CheckpointID: cp}); err != nil {
			return fmt.Errorf("docker checkpoint rm: %w", err)
		}
	}
	return nil
}

// floorClient makes no keep-alive connections: an established connection
// would be part of the next dump.
var floorClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}

// awaitCount calls http://addr/count until it answers, and checks the
// answer is want.
func awaitCount(ctx context.Context, addr string, want int, timeout time.Duration) error {
	return awaitCountWhile(ctx, addr, want, timeout, nil)
}

// errExited says the process awaited exited before it answered.
var errExited = errors.New("the process exited before it answered")

// awaitCountWhile is awaitCount that gives up with errExited as soon as
// alive (if set) says the process is gone.
func awaitCountWhile(ctx context.Context, addr string, want int, timeout time.Duration, alive func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := floorClient.Get("http://" + addr + "/count")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.TrimSpace(string(body)); got != strconv.Itoa(want) {
				return fmt.Errorf("/count answered %q, want %d", got, want)
			}
			return nil
		}
		if alive != nil && !alive() {
			return errExited
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %w", addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Section reports the floor.
func (r *floorResult) Section() Section {
	t := table{Header: []string{"Function", "CRIU alone: dump", "CRIU alone: restore", "CRIU alone: restore to first byte", "Docker: checkpoint create", "Docker: start --checkpoint", "Docker: start to first byte"}}
	for _, k := range wakeKinds {
		f := r.Kinds[k.Kind]
		if f == nil {
			continue
		}
		t.add(k.Kind, fmtMed(f.CRIUDump), fmtMed(f.CRIURestore), fmtMed(f.CRIUFirstByte), fmtMed(f.DockerDump), fmtMed(f.DockerRestore), fmtMed(f.DockerFirstByte))
	}
	body := fmt.Sprintf("What stops the wake and suspend targets, measured in this run: the same fixture binary with the same environment as section 1's two kinds, (a) run as a host process in its own session and dumped and restored by the `criu` binary Docker's runc uses (`criu dump -t PID --tcp-established`, then `criu restore -d`), outside Docker, and (b) in a plain container on the benchmark's bridge, timed through Docker's API (`docker checkpoint create`, `docker start --checkpoint`: no sandbox, no provider). Medians of %d samples each under CRIU alone and %d in Docker; every restore's `/count` had to go on from the last.\n\n", r.CRIUSamples, r.Samples) + t.Markdown()
	body += r.containerdText()
	if fs := r.allFailures(); len(fs) > 0 {
		body += "\nNot measured: " + strings.Join(fs, "; ") + "\n"
	}
	return Section{Title: floorTitle, Body: body}
}

const floorTitle = "Floor: CRIU alone, Docker alone, containerd directly"

// containerdText states the containerd-direct cold start and how it was
// measured.
func (r *floorResult) containerdText() string {
	c := r.Containerd
	if _, _, ok := r.containerdCold(); !ok {
		return ""
	}
	return fmt.Sprintf("\nThe trivial function's cold start by containerd directly, the bar issue 13 sets the trivial wake against (faasd drives containerd so): the same fixture image, imported from Docker (`docker save` | `ctr images import`, before the timing) into the benchmark's own namespace `%s` of the engine's containerd (`%s`), started by `ctr run -d` in a fresh container each time (removed after), timed from the start of `ctr run` to `/count`'s answer: **%s** (median of %d, after one not counted; spread %s; `ctr run` returned after %s). ctr's own start and connection, `ctr version` against the same socket, take %s of that; the figure is judged as measured, ctr included. faasd gives each function a CNI bridge, which this machine does not have: the container joined a network namespace prepared before the timing (a veth pair onto a bridge of the benchmark's), so network setup is left out, which makes containerd's figure faster and the bar for the trivial wake stricter.\n",
		c.Namespace, c.Socket, fmtDur(DurMedian(c.ColdStart)), len(c.ColdStart), fmtSpread(c.ColdStart), fmtDur(DurMedian(c.RunCall)), fmtDur(DurMedian(c.CtrOverhead)))
}

// fmtSpread is a sample's range.
func fmtSpread(ds []time.Duration) string {
	return fmtDur(slices.Min(ds)) + "-" + fmtDur(slices.Max(ds))
}

// fmtMed is a median, or "-" without samples.
func fmtMed(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmtDur(DurMedian(ds))
}
