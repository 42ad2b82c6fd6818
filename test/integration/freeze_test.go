//go:build integration

package integration

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// freezerState is the cgroup v1 freezer state file of a container of the
// second engine (cgroupfs driver, as setup configures engines).
func freezerState(id string) string {
	return filepath.Join("/sys/fs/cgroup/freezer/docker", id, "freezer.state")
}

func readFreezer(t *testing.T, id string) string {
	t.Helper()
	b, err := os.ReadFile(freezerState(id))
	if err != nil {
		t.Fatalf("freezer of %.12s: %v", id, err)
	}
	return strings.TrimSpace(string(b))
}

// criuWorkDir is the work directory runc.conf gives CRIU, where its dump.log
// is ("" when none is set).
func criuWorkDir(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/etc/criu/runc.conf")
	if err != nil {
		return ""
	}
	if m := regexp.MustCompile(`(?m)^work-dir\s+(\S+)`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// lastDumpLog reads CRIU's dump.log under the lock the provider holds
// around its dumps (checkpoint.Recorder), so that no dump writes it
// meanwhile.
func lastDumpLog(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, ".dump.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "dump.log"))
	return string(b)
}

// TestDirectCheckpointFreezesFirst: the direct checkpoint freezes the
// container's cgroup before CRIU runs (provider/docker/freezer.go), so
// CRIU finds it FROZEN and does not wait its 100 ms step for the freezer;
// a dump that fails leaves the function running, thawed (CRIU puts the
// freeze it found back); and a container left frozen by a provider killed
// during that freeze is thawed by the next provider, its state kept.
func TestDirectCheckpointFreezesFirst(t *testing.T) {
	p := StartProviderOnB(t)
	LoadImageOnB(t, FixtureImage)
	p.Deploy(Fixture("frosty"))
	counts(p, "frosty", 2)

	// CRIU's log of the dump: its first look at the freezer finds it
	// frozen. Another session's dump may have written the log since, so
	// up to three tries.
	if dir := criuWorkDir(t); dir != "" {
		want, found := 3, false
		for try := 0; try < 3 && !found; try++ {
			id := p.Containers("frosty")[0].ID
			p.Scale("frosty", 0)
			log := lastDumpLog(t, dir)
			if strings.Contains(log, "freezing cgroup /sys/fs/cgroup/freezer/docker/"+id) {
				found = true
				if !regexp.MustCompile(`freezing cgroup [^\n]*\n[^\n]*freezer\.state=FROZEN`).MatchString(log) || strings.Contains(log, "freezing processes:") {
					t.Errorf("CRIU did not find the cgroup frozen:\n%s", grepLines(log, "freez"))
				}
			}
			if got := nextCount(t, p, "frosty"); got != want {
				t.Fatalf("after hibernation /count = %d, want %d", got, want)
			}
			want++
		}
		if !found {
			t.Logf("CRIU's dump.log was another dump's three times: not checked")
		}
	}

	// A container frozen by a checkpoint whose provider was killed before
	// it thawed it: the next provider thaws it, and its count goes on.
	id := p.Containers("frosty")[0].ID
	before := nextCount(t, p, "frosty")
	if err := os.WriteFile(freezerState(id), []byte("FROZEN"), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if s := readFreezer(t, id); s != "FROZEN" {
			return "freezer " + s
		}
		return ""
	})
	p.Restart()
	if got := nextCount(t, p, "frosty"); got != before+1 {
		t.Errorf("after a restart over a frozen replica /count = %d, want %d", got, before+1)
	}
	if s := readFreezer(t, id); s != "THAWED" {
		t.Errorf("freezer %s after the restart, want THAWED", s)
	}
	if ci, err := dockerB.ContainerInspect(context.Background(), id); err != nil || !ci.State.Running || ci.State.Paused {
		t.Errorf("Docker says %+v (%v), want running, not paused", ci.State, err)
	}
	p.Delete("frosty")

	// A dump CRIU fails (multipath TCP) after it froze the container: it
	// runs on, thawed.
	dep := Fixture("mptcp")
	dep.EnvVars = map[string]string{"GODEBUG": "multipathtcp=1"}
	p.Deploy(dep)
	counts(p, "mptcp", 2)
	code, body := p.Request("POST", "/system/scale-function/mptcp", types.ScaleServiceRequest{ServiceName: "mptcp", Replicas: 0})
	if code != http.StatusInternalServerError || !strings.Contains(body, "keeps running") {
		t.Errorf("failed checkpoint answered %d %q", code, body)
	}
	if s := readFreezer(t, p.Containers("mptcp")[0].ID); s != "THAWED" {
		t.Errorf("freezer %s after a failed dump, want THAWED", s)
	}
	if got := counts(p, "mptcp", 1); got[0] != 3 {
		t.Errorf("count after a failed checkpoint = %v, want 3", got)
	}
	p.Delete("mptcp")
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
