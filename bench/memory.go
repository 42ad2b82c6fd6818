package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupLayouts are where a container's memory cgroup may be: cgroup v1
// (this project's machines) first, then v2, with the usage file and the
// memory.stat key of inactive file cache.
var cgroupLayouts = []struct{ dir, usage, inactive string }{
	{"/sys/fs/cgroup/memory/docker/%s", "memory.usage_in_bytes", "total_inactive_file"},
	{"/sys/fs/cgroup/memory/system.slice/docker-%s.scope", "memory.usage_in_bytes", "total_inactive_file"},
	{"/sys/fs/cgroup/system.slice/docker-%s.scope", "memory.current", "inactive_file"},
	{"/sys/fs/cgroup/docker/%s", "memory.current", "inactive_file"},
}

// workingSet returns a container's working set (usage minus inactive file
// cache, as docker stats reports it). exists is false when the container
// has no memory cgroup (it is not running: hibernated or removed), and the
// figure is then 0.
func workingSet(id string) (bytes int64, exists bool, err error) {
	if id == "" {
		return 0, false, nil
	}
	for _, l := range cgroupLayouts {
		dir := fmt.Sprintf(l.dir, id)
		b, err := os.ReadFile(filepath.Join(dir, l.usage))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return 0, true, fmt.Errorf("memory cgroup of %s: %w", id[:12], err)
		}
		usage, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, true, fmt.Errorf("memory cgroup of %s: %w", id[:12], err)
		}
		inactive, err := statKey(filepath.Join(dir, "memory.stat"), l.inactive)
		if err != nil {
			return 0, true, fmt.Errorf("memory cgroup of %s: %w", id[:12], err)
		}
		return max(0, usage-inactive), true, nil
	}
	return 0, false, nil
}

func statKey(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, sc.Err()
}

// checkpointBytes adds up the files of a container's checkpoints on disk
// (<docker root>/containers/<id>/checkpoints/*).
func checkpointBytes(dockerRoot, id string) (int64, error) {
	dir := filepath.Join(dockerRoot, "containers", id, "checkpoints")
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		case d.Type()&fs.ModeSymlink != 0:
			// Images kept elsewhere and linked from here count too.
			if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
				total += fi.Size()
			}
		}
		return nil
	})
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint size of %s: %w", id[:12], err)
	}
	return total, nil
}

// processRSS reads VmRSS of a process, in bytes.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("VmRSS of %d: %w", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS of %d: %w", pid, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("VmRSS of %d: not in /proc/%d/status", pid, pid)
}
