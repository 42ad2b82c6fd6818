//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestInPlaceProviderSession: a user's session with in-place hibernation (com.openfaas.criu.in-place),
// with the real faas-cli: the function hibernates while its container stays
// up under faas-criu-init (docker inspect: running; docker top: only the
// init), wakes with its state, keeps its output in `faas-cli logs`, and a
// provider restart keeps it hibernated in place.
func TestInPlaceProviderSession(t *testing.T) {
	// The init the provider's engine creates such containers under.
	initBin := buildInit(t)
	p := StartProviderEnv(t, []string{"FAAS_CRIU_INIT=" + initBin})
	cfg := FaasCLIConfig(t, map[string][2]string{p.URL: {p.User, p.Pass}})
	home := t.TempDir()
	faasCLIRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(faasCLI(t), append(args, "--gateway", p.URL)...)
		cmd.Dir = home
		cmd.Env = append(os.Environ(), "CI=true", "HOME="+home, "OPENFAAS_CONFIG="+cfg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("faas-cli %s: %v\n%s\nprovider:\n%s", strings.Join(args, " "), err, out, lastWarnings(p.Logs(), 20))
		}
		return string(out)
	}
	const fn = "inplace"

	out := faasCLIRun("deploy", "--image", FixtureImage, "--name", fn, "--label", "com.openfaas.criu.in-place=true", "--update=false")
	if !strings.Contains(out, "Deployed. 202") {
		t.Fatalf("faas-cli deploy says %q", out)
	}
	p.WaitAvailable(fn, 1)
	for want := 1; want <= 2; want++ {
		if got := nextCount(t, p, fn); got != want {
			t.Fatalf("/count = %d, want %d", got, want)
		}
	}

	// Scale to zero, as the gateway's idler does.
	p.Scale(fn, 0)
	p.WaitState(fn, "hibernated", 30*time.Second)
	checkInPlaceAsleep(t, p, fn)

	// The next request wakes it with its state.
	if got := nextCount(t, p, fn); got != 3 {
		t.Errorf("after the wake /count = %d, want 3", got)
	}
	if got := p.Annotation(fn, "com.openfaas.criu.state"); got != "awake" {
		t.Errorf("state %q after the wake, want awake", got)
	}
	if got := p.Annotation(fn, "com.openfaas.criu.last-wake"); !strings.HasPrefix(got, "in-place ") {
		t.Errorf("last wake %q, want from in-place", got)
	}
	t.Logf("last wake: %s", p.Annotation(fn, "com.openfaas.criu.last-wake"))
	// Its output after the wake reaches faas-cli logs (the restored
	// process writes to the container's own stdout).
	marker := fmt.Sprintf("after-the-wake-%d", time.Now().UnixNano())
	if got := p.MustInvoke(fn, "/log?line="+marker); got == "" {
		t.Log("/log answered nothing")
	}
	eventually(t, 10*time.Second, func() string {
		if logs := faasCLIRun("logs", fn, "--since", "10m", "--tail=false"); !strings.Contains(logs, marker) {
			return "faas-cli logs does not show the line printed after the wake"
		}
		return ""
	})

	// A provider restart keeps it hibernated in place, and its wake keeps
	// the count.
	p.Scale(fn, 0)
	p.WaitState(fn, "hibernated", 30*time.Second)
	p.Restart()
	if got := p.Annotation(fn, "com.openfaas.criu.state"); got != "hibernated" {
		t.Fatalf("state %q after the provider restart, want hibernated", got)
	}
	checkInPlaceAsleep(t, p, fn)
	if got := nextCount(t, p, fn); got != 4 {
		t.Errorf("after the provider restart and the wake /count = %d, want 4", got)
	}
	if n := len(p.CheckpointDirs(fn)); n != 0 {
		t.Errorf("%d engine checkpoints of a function hibernated in place, want none", n)
	}
}

// checkInPlaceAsleep checks a function hibernated in place as its user
// would: its status says so, docker inspect says its container runs, and
// docker top shows only faas-criu-init in it.
func checkInPlaceAsleep(t *testing.T, p *Provider, fn string) {
	t.Helper()
	if got := p.Annotation(fn, "com.openfaas.criu.hibernation"); got != "in-place" {
		t.Errorf("annotation com.openfaas.criu.hibernation = %q, want in-place", got)
	}
	cs := p.Containers(fn)
	if len(cs) != 1 {
		t.Fatalf("%d function containers, want 1", len(cs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ci, err := p.engine.ContainerInspect(ctx, cs[0].ID)
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	if ci.State == nil || !ci.State.Running {
		t.Errorf("docker inspect: the container of a function hibernated in place is not running: %+v", ci.State)
	}
	top, err := p.engine.ContainerTop(ctx, cs[0].ID, nil)
	if err != nil {
		t.Fatalf("docker top: %v", err)
	}
	col := len(top.Titles) - 1 // CMD comes last
	for i, title := range top.Titles {
		if title == "CMD" || title == "COMMAND" {
			col = i
		}
	}
	var cmds []string
	for _, proc := range top.Processes {
		cmds = append(cmds, proc[col])
	}
	// The init shows under its host path or where the engine mounts it.
	if len(cmds) != 1 || !strings.Contains(cmds[0], "faas-criu-init") && !strings.Contains(cmds[0], "/.faas-criu/init") {
		t.Errorf("docker top shows %q, want only faas-criu-init", cmds)
	}
}

// TestInPlaceProviderDeep: a function hibernated in place goes to the deep
// tier (deep-after): its function container and its sandbox stop, the dump
// stays; a request starts the sandbox, and the restore in place the
// container, with the state.
func TestInPlaceProviderDeep(t *testing.T) {
	initBin := buildInit(t)
	p := StartProviderEnv(t, []string{"FAAS_CRIU_INIT=" + initBin})
	const fn = "inplacedeep"
	dep := Fixture(fn)
	dep.Labels = &map[string]string{"com.openfaas.criu.in-place": "true", "com.openfaas.criu.deep-after": "1s"}
	p.Deploy(dep)
	p.WaitAvailable(fn, 1)
	if got := nextCount(t, p, fn); got != 1 {
		t.Fatalf("/count = %d, want 1", got)
	}
	p.Scale(fn, 0)
	p.WaitState(fn, "hibernated", 30*time.Second)
	eventually(t, 30*time.Second, func() string {
		if got := p.Annotation(fn, "com.openfaas.criu.tier"); got != "deep" {
			return "tier " + got + ", want deep"
		}
		return ""
	})
	if got := p.Annotation(fn, "com.openfaas.criu.hibernation"); got != "in-place" {
		t.Errorf("annotation com.openfaas.criu.hibernation = %q, want in-place", got)
	}
	// The tier says deep from the sandbox's kill event; its stop follows.
	eventually(t, 10*time.Second, func() string {
		for _, c := range p.AllContainers(fn) {
			if c.State == "running" {
				return fmt.Sprintf("container %s runs in the deep tier", c.Names)
			}
		}
		return ""
	})
	if got := nextCount(t, p, fn); got != 2 {
		t.Errorf("after the wake from the deep tier /count = %d, want 2", got)
	}
	if got := p.Annotation(fn, "com.openfaas.criu.last-wake"); !strings.HasPrefix(got, "deep ") {
		t.Errorf("last wake %q, want from deep", got)
	}
	t.Logf("last wake: %s", p.Annotation(fn, "com.openfaas.criu.last-wake"))
}
