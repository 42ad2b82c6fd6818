//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// TestInPlaceEngineRestart: issue 13's "an engine restart orphans nothing"
// for in-place hibernation, with and without live-restore. A function
// hibernated in place (its restored process the provider's child, outside
// Docker's own process tree) goes through a real engine restart (dockerd
// killed, as TestEngineRestart does, or stopped, then started again; its
// containerd with it): no process of it is left on the host outside the
// engine's running containers, Docker's view agrees with the provider's
// status, and it wakes with its state. Then,
// awake after a restore in place, through another restart: with
// live-restore it runs on with its count; without, Docker stops its
// container, the function's process dies with it, and the provider starts
// it afresh and says so, as for any awake function (TestEngineRestart).
func TestInPlaceEngineRestart(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tail of the engine's log:\n%s", tail("/var/log/faas-criu/engine-"+engineName+".log", 60))
		}
	})
	initBin := buildInit(t)
	host, root := SecondEngine(t)
	LoadImageOnB(t, FixtureImage)
	// The engine crashes (SIGKILL to dockerd, as TestEngineRestart), or
	// stops as a service manager's restart stops it (SIGTERM).
	for _, c := range []struct {
		liveRestore bool
		down        string
	}{{true, "kill"}, {false, "kill"}, {true, "stop"}, {false, "stop"}} {
		t.Run(fmt.Sprintf("live-restore=%t/%s", c.liveRestore, c.down), func(t *testing.T) {
			// No provider runs on the engine yet: it can change its
			// configuration without harm.
			engineCmd(t, "stop", c.liveRestore)
			engineCmd(t, "start", c.liveRestore)
			p := StartProviderEnv(t, []string{"DOCKER_HOST=" + host, "FAAS_CRIU_INIT=" + initBin})
			p.engine, p.dockerRoot = dockerB, root
			inPlaceEngineRestart(t, p, c.liveRestore, c.down)
		})
	}
}

func inPlaceEngineRestart(t *testing.T, p *Provider, liveRestore bool, down string) {
	const fn = "iprestart"
	// The fixture's processes on the host are told from everyone else's
	// (other engines run the same /fn) by an environment variable of their
	// own, which a restored process keeps in its memory.
	mark := fmt.Sprintf("FAAS_CRIU_TEST_MARK=%s-%d", fn, time.Now().UnixNano())
	dep := Fixture(fn)
	dep.EnvVars = map[string]string{"FAAS_CRIU_TEST_MARK": strings.TrimPrefix(mark, "FAAS_CRIU_TEST_MARK=")}
	dep.Labels = &map[string]string{"com.openfaas.criu.in-place": "true"}
	p.Deploy(dep)
	p.WaitAvailable(fn, 1)
	if got := nextCount(t, p, fn); got != 1 {
		t.Fatalf("/count = %d, want 1", got)
	}
	p.Scale(fn, 0)
	p.WaitState(fn, "hibernated", 30*time.Second)
	checkInPlaceAsleep(t, p, fn)
	noOrphans(t, p, mark, 0)
	if got := nextCount(t, p, fn); got != 2 {
		t.Fatalf("after the wake in place /count = %d, want 2", got)
	}
	pids := noOrphans(t, p, mark, 1)
	if pp := ppid(pids[0]); pp != p.cmd.Process.Pid {
		t.Errorf("the function restored in place (pid %d) has parent %d, want the provider %d", pids[0], pp, p.cmd.Process.Pid)
	}
	p.Scale(fn, 0)
	p.WaitState(fn, "hibernated", 30*time.Second)
	noOrphans(t, p, mark, 0)

	// The engine restarts under the function hibernated in place.
	restartEngine(t, liveRestore, down)
	noOrphans(t, p, mark, 0)
	asleepAsDockerSays(t, p, fn, liveRestore)
	if got := nextCount(t, p, fn); got != 3 {
		t.Errorf("the function hibernated in place woke after the engine restart with /count = %d, want 3", got)
	}
	// From the tier the status said: its containers kept (live-restore),
	// or stopped by the engine (deep).
	wantWake := map[bool]string{true: "in-place ", false: "deep "}[liveRestore]
	if got := p.Annotation(fn, "com.openfaas.criu.last-wake"); !strings.HasPrefix(got, wantWake) {
		t.Errorf("last wake %q, want from %s", got, wantWake)
	}
	t.Logf("last wake after the first engine restart: %s", p.Annotation(fn, "com.openfaas.criu.last-wake"))
	awake := noOrphans(t, p, mark, 1)

	// The engine restarts under the function awake, restored in place.
	crashed := time.Now()
	restartEngine(t, liveRestore, down)
	got := nextCount(t, p, fn)
	ann := *p.Status(fn).Annotations
	t.Logf("after the second engine restart: /count %d, state-lost %q", got, ann["com.openfaas.criu.state-lost"])
	after := noOrphans(t, p, mark, 1)
	if liveRestore {
		if got != 4 {
			t.Errorf("the awake function after an engine restart with live-restore answered %d, want 4", got)
		}
		if lost := ann["com.openfaas.criu.state-lost"]; lost != "" {
			t.Errorf("the function kept its state but its status says it was lost: %s", lost)
		}
		if after[0] != awake[0] {
			t.Errorf("the function's process is %d after the engine restart with live-restore, want the same %d", after[0], awake[0])
		}
	} else {
		afreshAfterEngineRestart(t, p, fn, mark, awake[0], got, crashed)
	}
	// Hibernation in place goes on after the restart (the containers the
	// restarted engine took up again, or started afresh).
	p.Scale(fn, 0)
	p.WaitState(fn, "hibernated", 30*time.Second)
	checkInPlaceAsleep(t, p, fn)
	noOrphans(t, p, mark, 0)
	if again := nextCount(t, p, fn); again != got+1 {
		t.Errorf("after a hibernation in place following the engine restarts /count = %d, want %d", again, got+1)
	}
	noOrphans(t, p, mark, 1)
}

// afreshAfterEngineRestart checks a function awake after a restore in place
// whose container an engine restart without live-restore stopped: the
// restored process (pid) died with it, and the function started afresh
// (its /count answered got), its status saying so.
func afreshAfterEngineRestart(t *testing.T, p *Provider, fn, mark string, pid, got int, crashed time.Time) {
	t.Helper()
	ann := *p.Status(fn).Annotations
	if alive(pid, mark) {
		t.Errorf("the function's process %d restored in place survived its container's stop", pid)
	}
	if got != 1 {
		t.Errorf("the awake function after an engine restart without live-restore answered %d, want a fresh 1", got)
	}
	at, err := time.Parse(time.RFC3339Nano, ann["com.openfaas.criu.state-lost-at"])
	if ann["com.openfaas.criu.state-lost"] == "" || err != nil || at.Before(crashed) {
		t.Errorf("the function's status after it lost its state: %v", ann)
	}
	if got := ann["com.openfaas.criu.state"]; got != "awake" {
		t.Errorf("state %q, want awake", got)
	}
}

// asleepAsDockerSays checks that Docker's view of a function hibernated in
// place agrees with its status after an engine restart: with live-restore
// its containers run on (tier hibernated, docker top shows the init alone);
// without, the engine stopped them (docker ps -a: exited; tier deep).
func asleepAsDockerSays(t *testing.T, p *Provider, fn string, liveRestore bool) {
	t.Helper()
	wantTier := map[bool]string{true: "hibernated", false: "deep"}[liveRestore]
	eventually(t, 30*time.Second, func() string {
		ann := *p.Status(fn).Annotations
		if ann["com.openfaas.criu.state"] != "hibernated" || ann["com.openfaas.criu.hibernation"] != "in-place" || ann["com.openfaas.criu.tier"] != wantTier {
			return fmt.Sprintf("status %v, want hibernated in place, tier %s", ann, wantTier)
		}
		return ""
	})
	all := p.AllContainers(fn)
	if len(all) == 0 {
		t.Fatalf("docker ps -a shows no container of %s", fn)
	}
	for _, c := range all {
		ci, err := p.engine.ContainerInspect(context.Background(), c.ID)
		if err != nil {
			t.Fatalf("docker inspect %s: %v", c.Names, err)
		}
		if ci.State.Running != liveRestore {
			t.Errorf("docker inspect %s after the engine restart (live-restore %t): running %t, status %s", c.Names, liveRestore, ci.State.Running, ci.State.Status)
		}
	}
	if liveRestore {
		checkInPlaceAsleep(t, p, fn)
	}
}

// noOrphans checks, until it holds or 15 s pass, that every process of the
// fixture marked by mark on the host runs inside a running container of
// the provider's engine (in its containers' pids cgroups), and that n of
// them run; it returns their pids. A process of the fixture the provider
// left as its zombie counts too (its environment is gone, not its parent).
func noOrphans(t *testing.T, p *Provider, mark string, n int) []int {
	t.Helper()
	var pids []int
	eventually(t, 15*time.Second, func() string {
		pids = fixturePids(mark, p.cmd.Process.Pid)
		inside := enginePids(t, p)
		var outside []string
		for _, pid := range pids {
			if !inside[pid] {
				outside = append(outside, procLine(pid))
			}
		}
		if len(outside) > 0 {
			return fmt.Sprintf("processes of the fixture on the host outside the engine's running containers: %v", outside)
		}
		if len(pids) != n {
			return fmt.Sprintf("%d processes of the fixture run (%v), want %d", len(pids), pids, n)
		}
		return ""
	})
	return pids
}

// fixturePids lists the host's processes of the fixture binary (/fn)
// carrying mark in their environment, or children of the provider.
func fixturePids(mark string, provider int) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if comm, _ := os.ReadFile(d + "/comm"); strings.TrimSpace(string(comm)) != "fn" {
			continue
		}
		if alive(pid, mark) || ppid(pid) == provider {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// alive says whether pid is a process with mark in its environment.
func alive(pid int, mark string) bool {
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	for _, kv := range bytes.Split(env, []byte{0}) {
		if string(kv) == mark {
			return true
		}
	}
	return false
}

// ppid is a process's parent pid (0: unknown).
func ppid(pid int) int {
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// procLine describes a process for a failure message.
func procLine(pid int) string {
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	state := "?"
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "State:"); ok {
			state = strings.TrimSpace(v)
		}
	}
	return fmt.Sprintf("%d (parent %d, %s)", pid, ppid(pid), state)
}

// enginePids is the set of host pids in the pids cgroups of the provider's
// engine's running containers.
func enginePids(t *testing.T, p *Provider) map[int]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := p.engine.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		t.Fatalf("docker ps: %v", err)
	}
	in := map[int]bool{}
	for _, c := range list {
		ci, err := p.engine.ContainerInspect(ctx, c.ID)
		if err != nil || ci.State == nil || !ci.State.Running {
			continue
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", ci.State.Pid))
		for _, l := range strings.Split(string(cg), "\n") {
			f := strings.SplitN(l, ":", 3)
			if len(f) != 3 || f[1] != "pids" {
				continue
			}
			procs, _ := os.ReadFile("/sys/fs/cgroup/pids" + f[2] + "/cgroup.procs")
			for _, s := range strings.Fields(string(procs)) {
				if pid, err := strconv.Atoi(s); err == nil {
					in[pid] = true
				}
			}
		}
	}
	return in
}

// restartEngine takes the second engine down (down: kill or stop) and
// starts it again, and checks that both its dockerd and its containerd
// (which ends with dockerd) are new processes.
func restartEngine(t *testing.T, liveRestore bool, down string) {
	t.Helper()
	before := engineDaemons(t)
	engineCmd(t, down, liveRestore)
	engineCmd(t, "start", liveRestore)
	after := engineDaemons(t)
	if before[0] == after[0] || before[1] == after[1] {
		t.Fatalf("the engine did not restart: dockerd and containerd pids %v before, %v after", before, after)
	}
}

// engineDaemons reads the second engine's dockerd and containerd pids from
// their pid files (scripts/second-engine.sh).
func engineDaemons(t *testing.T) [2]string {
	t.Helper()
	var pids [2]string
	for i, f := range []string{"/var/run/faas-criu-engine-" + engineName + ".pid", "/var/run/faas-criu-engine-" + engineName + "/containerd/containerd.pid"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("the engine's pid file: %v", err)
		}
		pids[i] = strings.TrimSpace(string(b))
	}
	return pids
}
