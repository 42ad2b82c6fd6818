//go:build integration

package integration

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// TestDirectCheckpointKeepsDockersView: the provider has the engine's
// containerd write a hibernation checkpoint straight where dockerd keeps it,
// past Docker's checkpoint API (provider/docker/containerd.go). Docker stays
// the engine of record: the container shows as exited, its checkpoint is
// listed where `docker start --checkpoint` finds it (the wake is that start),
// its log is whole, and an engine restart in between orphans nothing.
func TestDirectCheckpointKeepsDockersView(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tail of the engine's log:\n%s", tail("/var/log/faas-criu/engine-"+engineName+".log", 40))
		}
	})
	p := StartProviderOnB(t)
	LoadImageOnB(t, FixtureImage)
	p.Deploy(Fixture("direct"))
	counts(p, "direct", 2)
	id := p.Containers("direct")[0].ID

	since := time.Now()
	p.Scale("direct", 0)
	cp := dockersHibernatedView(t, p, id, since)

	// The engine restarts (live-restore, as setup configures it) while the
	// function sleeps: nothing runs that Docker does not know of.
	engineCmd(t, "stop", true)
	engineCmd(t, "start", true)
	noOrphanTasks(t)
	if cps := checkpointsOf(t, id); !slices.Contains(cps, cp) {
		t.Errorf("after the engine's restart Docker lists checkpoints %v, want %s", cps, cp)
	}

	// The wake is Docker's start from that checkpoint: the memory is back.
	if got := nextCount(t, p, "direct"); got != 3 {
		t.Errorf("after the wake /count = %d, want 3", got)
	}
	if ci, err := dockerB.ContainerInspect(context.Background(), id); err != nil || !ci.State.Running {
		t.Errorf("after the wake Docker says: %+v %v", ci.State, err)
	}
	// And again on the restarted engine (a new connection to its containerd).
	since = time.Now()
	p.Scale("direct", 0)
	dockersHibernatedView(t, p, id, since)
	if got := nextCount(t, p, "direct"); got != 4 {
		t.Errorf("after the second wake /count = %d, want 4", got)
	}
	noOrphanTasks(t)
	p.Delete("direct")
}

// dockersHibernatedView checks what Docker says of a replica just
// hibernated, and returns its checkpoint's name.
func dockersHibernatedView(t *testing.T, p *Provider, id string, since time.Time) string {
	t.Helper()
	ctx := context.Background()
	ci, err := dockerB.ContainerInspect(ctx, id)
	if err != nil || ci.State.Running || ci.State.Status != "exited" {
		t.Fatalf("hibernated container: Docker says %+v (%v), want exited", ci.State, err)
	}
	dirs := p.CheckpointDirs("direct")
	if len(dirs) != 1 || !strings.HasPrefix(filepath.Base(dirs[0]), "hib-") {
		t.Fatalf("checkpoint directories %v, want one hib-", dirs)
	}
	cp := filepath.Base(dirs[0])
	if cps := checkpointsOf(t, id); !slices.Contains(cps, cp) {
		t.Errorf("docker checkpoint ls: %v, want %s", cps, cp)
	}
	// Docker saw the task exit ("die"), and was not asked for the
	// checkpoint (its API logs a "checkpoint" event).
	seen := containerEvents(t, dockerB, id, since)
	if !slices.Contains(seen, "die") || slices.Contains(seen, "checkpoint") {
		t.Errorf("Docker's events for the container since the scale: %v, want a die and no checkpoint", seen)
	}
	rc, err := dockerB.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); !strings.Contains(string(b), "fixture listening") {
		t.Errorf("docker logs of the hibernated container: %q", b)
	}
	return cp
}

func checkpointsOf(t *testing.T, id string) []string {
	t.Helper()
	list, err := dockerB.CheckpointList(context.Background(), id, checkpoint.ListOptions{})
	if err != nil {
		t.Fatalf("docker checkpoint ls: %v", err)
	}
	var out []string
	for _, c := range list {
		out = append(out, c.Name)
	}
	return out
}

// containerEvents lists the actions Docker logged for a container since.
func containerEvents(t *testing.T, engine *client.Client, id string, since time.Time) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := filters.NewArgs(filters.Arg("container", id))
	msgs, errs := engine.Events(ctx, events.ListOptions{
		Since: since.Format(time.RFC3339Nano), Until: time.Now().Format(time.RFC3339Nano), Filters: f,
	})
	var out []string
	for {
		select {
		case m := <-msgs:
			out = append(out, string(m.Action))
		case err := <-errs:
			if err != nil && err != io.EOF {
				t.Fatalf("docker events: %v", err)
			}
			return out
		}
	}
}

// noOrphanTasks: every task the second engine's containerd runs is a
// container Docker lists as running.
func noOrphanTasks(t *testing.T) {
	t.Helper()
	// A wake lets requests through at the replica's first answer, before
	// Docker's start call returns (provider/early.go): for those few tens of
	// milliseconds containerd runs a task that Docker does not list yet. An
	// orphan is a task Docker never learns of, so the check allows Docker a
	// few seconds to catch up.
	var unknown []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		unknown = tasksDockerDoesNotList(t)
		if len(unknown) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, task := range unknown {
		t.Errorf("containerd runs task %s, which Docker does not list as running (after 5 s)", task)
	}
}

// tasksDockerDoesNotList returns the engine's containerd tasks whose
// containers Docker does not list as running.
func tasksDockerDoesNotList(t *testing.T) []string {
	t.Helper()
	sock := "/var/run/faas-criu-engine-" + engineName + "/containerd/containerd.sock"
	out, err := exec.Command("ctr", "-a", sock, "-n", "moby", "task", "ls", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr task ls: %v\n%s", err, out)
	}
	running, err := dockerB.ContainerList(context.Background(), container.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, c := range running {
		known[c.ID] = true
	}
	var unknown []string
	for _, task := range strings.Fields(string(out)) {
		if !known[task] {
			unknown = append(unknown, task)
		}
	}
	return unknown
}
