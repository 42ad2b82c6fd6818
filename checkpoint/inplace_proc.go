package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/faas-criu/faas-criu/internal/initfiles"
	"golang.org/x/sys/unix"
)

// The files of faas-criu-init's directory (initfiles tells what they hold):
// the host writes them, the init reads them.
const (
	InitMarker   = initfiles.Marker
	InitFunction = initfiles.Function
	InitExit     = initfiles.Exit
)

// mountEntry is a line of /proc/PID/mountinfo.
type mountEntry struct {
	root, point, fstype, super string
}

func parseMountinfo(s string) []mountEntry {
	var ms []mountEntry
	for _, l := range strings.Split(s, "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		ms = append(ms, mountEntry{root: unescape(f[3]), point: unescape(f[4]), fstype: g[0], super: g[2]})
	}
	return ms
}

func unescape(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// hostCgroupMount finds the host's mount of the hierarchy with these
// controllers ("" for cgroup v2).
func hostCgroupMount(host []mountEntry, controllers string) (mountEntry, bool) {
	for _, m := range host {
		if controllers == "" {
			if m.fstype == "cgroup2" {
				return m, true
			}
			continue
		}
		if m.fstype != "cgroup" {
			continue
		}
		opts := strings.Split(m.super, ",")
		all := true
		for _, c := range strings.Split(controllers, ",") {
			all = all && slices.Contains(opts, c)
		}
		if all {
			return m, true
		}
	}
	return mountEntry{}, false
}

// containerCgroupMounts maps the cgroup mounts in the container (cmi, its
// mountinfo) to their host directories (host, the host's mountinfo): the
// same hierarchy, at the root the container's mount shows.
func containerCgroupMounts(cmi, host []mountEntry) map[string]string {
	out := map[string]string{}
	for _, m := range cmi {
		if m.fstype != "cgroup" && m.fstype != "cgroup2" {
			continue
		}
		for _, h := range host {
			if h.fstype == m.fstype && h.super == m.super && strings.HasPrefix(m.root, h.root) {
				out[m.point] = filepath.Join(h.point, strings.TrimPrefix(m.root, h.root))
				break
			}
		}
	}
	return out
}

func cgroupMounts(init int) (map[string]string, error) {
	cmi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", init))
	if err != nil {
		return nil, fmt.Errorf("the container's mounts: %w", err)
	}
	host, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("the host's mounts: %w", err)
	}
	return containerCgroupMounts(parseMountinfo(string(cmi)), parseMountinfo(string(host))), nil
}

// cgroupPaths reads /proc/PID/cgroup: controllers ("" for v2) -> path.
func cgroupPaths(pid int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, fmt.Errorf("cgroups of pid %d: %w", pid, err)
	}
	return parseCgroup(string(b)), nil
}

func parseCgroup(s string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		out[f[1]] = f[2]
		for _, c := range strings.Split(f[1], ",") {
			out[c] = f[2]
		}
	}
	return out
}

// cgroupDirs are the host directories of every cgroup of pid, one per
// hierarchy.
func cgroupDirs(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, fmt.Errorf("cgroups of pid %d: %w", pid, err)
	}
	hb, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("the host's mounts: %w", err)
	}
	host := parseMountinfo(string(hb))
	var dirs []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if m, ok := hostCgroupMount(host, f[1]); ok {
			dirs = append(dirs, filepath.Join(m.point, strings.TrimPrefix(f[2], m.root)))
		}
	}
	return dirs, nil
}

// joinCgroups moves pid into every cgroup of init.
func joinCgroups(pid, init int) error {
	dirs, err := cgroupDirs(init)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("criu into the container's cgroup %s: %w", d, err)
		}
	}
	return nil
}

// StartTime is a process's start time (field 22 of its stat), the same
// seen from the host and from its container.
func StartTime(pid int) string {
	return initfiles.StartTime(readString(fmt.Sprintf("/proc/%d/stat", pid)))
}

// FindFunction returns the host pid of the function under the container's
// init (host pid init, its directory dir): the init's child leading its own
// session (started by the init), or the restored process the host named in
// dir's function file for this run of the init. 0 when there is none.
func FindFunction(init int, dir string) (int, error) {
	dirs, err := cgroupDirs(init)
	if err != nil {
		return 0, err
	}
	start := StartTime(init)
	restored, _ := initfiles.ParsePidStart(readString(filepath.Join(dir, InitFunction)), start)
	for _, d := range dirs {
		procs, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, p := range strings.Fields(string(procs)) {
			pid, _ := strconv.Atoi(p)
			if pid != init && isFunction(pid, init, restored) {
				return pid, nil
			}
		}
		return 0, nil // every hierarchy lists the same processes
	}
	return 0, fmt.Errorf("no cgroup of the container's init (pid %d) found", init)
}

func isFunction(pid, init, restored int) bool {
	f := initfiles.StatFields(readString(fmt.Sprintf("/proc/%d/stat", pid)))
	if len(f) < 7 || f[2] == "Z" {
		return false
	}
	ns := NSPid(pid)
	if restored != 0 && ns == restored {
		return true
	}
	return f[3] == strconv.Itoa(init) && nsSid(pid) == ns
}

// nsSid is a process's session id in its own pid namespace.
func nsSid(pid int) int {
	f := statusFields(pid, "NSsid")
	if len(f) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(f[len(f)-1])
	return n
}

// ReapRestored waits for a restored function (this process's child, host
// pid pid, nspid in its container) to end, tells the init its status
// through dir's exit file, then reaps it: a zombie would keep its pid taken
// in the container (the next restore fails) and the container's end
// waiting.
func ReapRestored(pid, nspid int, dir string) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			return // not our child
		}
	}
	st := zombieExit(readString(fmt.Sprintf("/proc/%d/stat", pid)))
	_ = writeAtomic(filepath.Join(dir, InitExit), fmt.Sprintf("%d %d\n", nspid, st))
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, 0, nil)
}

// zombieExit is the status of the zombie whose stat this is, 1 when it
// shows none.
func zombieExit(stat string) int {
	if st, ok := initfiles.ZombieStatus(stat); ok {
		return st
	}
	return 1
}

// reapStrays reaps the zombies a failed restore left as this process's
// children (CRIU restores as our sibling, so cannot reap them): processes
// of another pid namespace, never ours from exec.
func reapStrays() {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
	for _, t := range tasks {
		for _, c := range strings.Fields(readString(t)) {
			pid, _ := strconv.Atoi(c)
			f := initfiles.StatFields(readString(fmt.Sprintf("/proc/%d/stat", pid)))
			if len(f) > 3 && f[2] == "Z" && nsLevels(pid) > 1 {
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			}
		}
	}
}

func nsLevels(pid int) int { return len(statusFields(pid, "NSpid")) }

// writeAtomic writes a file the init may read at any moment.
func writeAtomic(path, s string) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteInitFile writes one of the init's files (InitMarker...) in dir.
func WriteInitFile(dir, name, content string) error {
	if err := writeAtomic(filepath.Join(dir, name), content); err != nil {
		return fmt.Errorf("faas-criu-init's %s file: %w", name, err)
	}
	return nil
}
