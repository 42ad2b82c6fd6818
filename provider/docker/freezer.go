package docker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A direct checkpoint (containerd.go) reaches CRIU with the container
// running, and runc has CRIU freeze it through its cgroup v1 freezer. CRIU
// writes FROZEN, reads the state back at once and, when the kernel still says
// FREEZING (it usually does: some thread is running or not yet at a freezing
// point), sleeps 100 ms before it looks again (criu/seize.c,
// freeze_processes, step_ms): a trivial function's freeze then costs 100 ms
// of its 250 ms suspend, where the kernel needs about 1 ms. Docker's own
// checkpoint never paid that: containerd's client pauses the task first
// (runc pause, which polls every few microseconds), and CRIU, finding the
// cgroup FROZEN, skips its wait. So the direct checkpoint freezes the
// cgroup first too, the way runc pause does, without telling Docker (as
// CRIU's own freeze does not: Docker's view of the container is the same as
// before), and thaws it whenever the container may still run afterwards:
// a dump that failed (CRIU puts back the state it found, FROZEN), a dump
// that leaves it running (a backup: the same), or a dump whose outcome is
// unknown (thawing never harms a dump in progress: CRIU holds the tasks by
// ptrace once it seized them, and thaws the cgroup itself then).
//
// Only the cgroup v1 freezer is handled (CRIU's cgroup v2 wait has the same
// step, not measured here); a freezer not found where Docker's cgroupfs or
// systemd driver puts it, or one that does not reach FROZEN soon, is left
// to CRIU as before.

// cgroupRoot is where the cgroup hierarchies are mounted (a test's own
// directory in unit tests).
var cgroupRoot = "/sys/fs/cgroup"

// freezerDirs are where a container's v1 freezer cgroup may be, by
// Docker's cgroup driver.
var freezerDirs = []string{"freezer/docker/%s", "freezer/system.slice/docker-%s.scope"}

// Freezer states, as cgroup v1's freezer.state reads and takes them.
const (
	stateFrozen   = "FROZEN"
	stateFreezing = "FREEZING"
	stateThawed   = "THAWED"
)

// freezeBudget is how long freezeForDump waits for the kernel: past it
// (CRIU would have waited 100 ms) the cgroup is thawed again and CRIU
// freezes it as it did before.
const freezeBudget = 50 * time.Millisecond

// freezerState returns the freezer.state file of container id, or "" when
// it has none here (not running, another cgroup layout or version).
func freezerState(id string) string {
	for _, d := range freezerDirs {
		p := filepath.Join(cgroupRoot, fmt.Sprintf(d, id), "freezer.state")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// freezeForDump freezes container id's cgroup and waits until the kernel
// says it is frozen, writing FROZEN again between looks as runc pause does
// (a cgroup v1 freeze can stall while tasks are being added). It returns
// the thaw to run once the dump is over, whatever its outcome; when the
// cgroup could not be frozen it is thawed at once and CRIU freezes it
// itself.
func freezeForDump(id string) (thaw func()) {
	path := freezerState(id)
	if path == "" {
		return func() {}
	}
	thaw = func() { _ = thawFreezer(path) }
	deadline := time.Now().Add(freezeBudget)
	pause := 50 * time.Microsecond
	for {
		if err := writeState(path, stateFrozen); err != nil {
			thaw()
			return func() {}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			thaw()
			return func() {}
		}
		switch strings.TrimSpace(string(b)) {
		case stateFrozen:
			return thaw
		case stateFreezing:
		default: // thawed behind our back, or unknown: not ours to fight
			thaw()
			return func() {}
		}
		if time.Now().After(deadline) {
			thaw()
			return func() {}
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Millisecond)
	}
}

// thawFreezer thaws a freezer cgroup; one that is gone (the container
// exited) needs nothing.
func thawFreezer(path string) error {
	err := writeState(path, stateThawed)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// writeState writes a freezer state; the file is never created (a cgroup
// removed meanwhile has none).
func writeState(path, state string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(state)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// thawLeftFrozen thaws container id's cgroup if it is frozen or freezing,
// and says whether it was. The caller knows that Docker does not count the
// container as paused: then a frozen cgroup is one a direct checkpoint froze
// and did not get to thaw (the provider was killed during it).
func thawLeftFrozen(id string) (bool, error) {
	path := freezerState(id)
	if path == "" {
		return false, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if strings.TrimSpace(string(b)) == stateThawed {
		return false, nil
	}
	return true, thawFreezer(path)
}
