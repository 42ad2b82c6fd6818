package provider

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupRoots are where a container's memory cgroup may be, by cgroup
// version and Docker's cgroup driver.
var cgroupRoots = []struct{ dir, usage, inactive string }{
	{"/sys/fs/cgroup/memory/docker/%s", "memory.usage_in_bytes", "total_inactive_file"},
	{"/sys/fs/cgroup/memory/system.slice/docker-%s.scope", "memory.usage_in_bytes", "total_inactive_file"},
	{"/sys/fs/cgroup/system.slice/docker-%s.scope", "memory.current", "inactive_file"},
	{"/sys/fs/cgroup/docker/%s", "memory.current", "inactive_file"},
}

// MemoryCgroupDir returns the memory cgroup directory of a container, or ""
// when it has none (it is not running).
func MemoryCgroupDir(containerID string) string {
	for _, c := range cgroupRoots {
		dir := strings.Replace(c.dir, "%s", containerID, 1)
		if _, err := os.Stat(filepath.Join(dir, c.usage)); err == nil {
			return dir
		}
	}
	return ""
}

// containerMemory returns a container's working set: memory in use minus
// inactive file cache, as docker stats reports it. ok is false when the
// container has no memory cgroup.
func containerMemory(containerID string) (bytes int64, ok bool) {
	for _, c := range cgroupRoots {
		dir := strings.Replace(c.dir, "%s", containerID, 1)
		b, err := os.ReadFile(filepath.Join(dir, c.usage))
		if err != nil {
			continue
		}
		usage, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, false
		}
		return max(0, usage-statValue(filepath.Join(dir, "memory.stat"), c.inactive)), true
	}
	return 0, false
}

func statValue(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// memoryOf reads a container's working set: a variable so that unit tests
// over the fake engine, whose containers have no memory cgroup, can give
// them some (the memory budget's tests).
var memoryOf = containerMemory

// functionMemory adds up the working sets of a function's live containers.
func functionMemory(reps []replica) int64 {
	var total int64
	for _, r := range reps {
		if r.status == "running" || r.status == "paused" {
			if b, ok := memoryOf(r.id); ok {
				total += b
			}
		}
	}
	return total
}
