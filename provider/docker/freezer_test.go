package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeFreezer makes a freezer.state file for container id under a test's
// cgroup root, in the layout of Docker's cgroupfs driver, holding state.
func fakeFreezer(t *testing.T, id, state string) string {
	t.Helper()
	old := cgroupRoot
	cgroupRoot = t.TempDir()
	t.Cleanup(func() { cgroupRoot = old })
	dir := filepath.Join(cgroupRoot, "freezer", "docker", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "freezer.state")
	if err := os.WriteFile(path, []byte(state+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readState(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// A direct checkpoint freezes the container's cgroup before the dump, and
// the thaw it gets back thaws it (the cgroup of a container that exited
// with its dump is gone: nothing to do).
func TestFreezeForDump(t *testing.T) {
	id := strings.Repeat("ab", 32)
	path := fakeFreezer(t, id, stateThawed)
	thaw := freezeForDump(id)
	if got := readState(t, path); got != stateFrozen {
		t.Fatalf("freezer.state %q before the dump, want %s", got, stateFrozen)
	}
	thaw()
	if got := readState(t, path); got != stateThawed {
		t.Errorf("freezer.state %q after the thaw, want %s", got, stateThawed)
	}
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	thaw() // the container exited: its cgroup is gone
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the thaw of a removed cgroup made %s: %v", path, err)
	}
}

// A container whose freezer is not where Docker's drivers put it is left
// to CRIU's own freeze.
func TestFreezeForDumpWithoutFreezer(t *testing.T) {
	fakeFreezer(t, strings.Repeat("ab", 32), stateThawed)
	other := strings.Repeat("cd", 32)
	freezeForDump(other)() // no panic, nothing written
	if thawed, err := thawLeftFrozen(other); thawed || err != nil {
		t.Errorf("thawLeftFrozen of a container without a freezer: %v, %v", thawed, err)
	}
}

// thawLeftFrozen thaws a cgroup found frozen or freezing, and says so; a
// thawed one is left alone.
func TestThawLeftFrozen(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, c := range []struct {
		state string
		want  bool
	}{{stateThawed, false}, {stateFrozen, true}, {stateFreezing, true}} {
		path := fakeFreezer(t, id, c.state)
		thawed, err := thawLeftFrozen(id)
		if err != nil || thawed != c.want {
			t.Errorf("%s: thawLeftFrozen = %v, %v; want %v", c.state, thawed, err, c.want)
		}
		if got := readState(t, path); got != stateThawed {
			t.Errorf("%s: freezer.state %q after, want %s", c.state, got, stateThawed)
		}
	}
}
