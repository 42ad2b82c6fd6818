package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/faas-criu/faas-criu/checkpoint"
)

// machine describes where the benchmark ran.
type machine struct {
	CPU         string
	Cores       int
	MemoryBytes int64
	Kernel      string
	OS          string
	Engine      string
	EngineAPI   string
	CgroupDrv   string
	CRIU        string
	Runc        string
	// RCU is the host's RCU grace periods (scripts/setup.sh's
	// FAAS_CRIU_RCU_EXPEDITED): each restore waits for two of them.
	RCU      string
	Go       string
	Provider string
	Date     time.Time
	Command  string
}

func collectMachine(ctx context.Context, docker *client.Client, providerBin string) machine {
	m := machine{
		CPU:     cpuModel(),
		Cores:   runtime.NumCPU(),
		Kernel:  firstLine(readFile("/proc/sys/kernel/osrelease")),
		OS:      osRelease(),
		CRIU:    strings.TrimPrefix(firstLine(output("criu", "--version")), "Version: "),
		Runc:    strings.TrimPrefix(firstLine(output("runc", "--version")), "runc version "),
		RCU:     checkpoint.ReadRCU(checkpoint.SysKernel).String(),
		Go:      runtime.Version(),
		Date:    time.Now().UTC(),
		Command: strings.Join(append([]string{"go run ./bench"}, os.Args[1:]...), " "),
	}
	m.Provider = firstLine(output(providerBin, "version"))
	if kb, err := meminfoKB("MemTotal:"); err == nil {
		m.MemoryBytes = kb * 1024
	}
	if info, err := docker.Info(ctx); err == nil {
		m.Engine = info.ServerVersion
		m.CgroupDrv = info.CgroupDriver + ", cgroup v" + info.CgroupVersion
	}
	m.EngineAPI = docker.ClientVersion()
	return m
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

// output runs a command and returns what it printed, or "unknown".
func output(name string, args ...string) string {
	path, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
			if _, serr := os.Stat(dir + "/" + name); serr == nil {
				path, err = dir+"/"+name, nil
				break
			}
		}
	}
	if err != nil {
		return "unknown"
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown"
	}
	return string(out)
}

func cpuModel() string {
	for _, l := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func osRelease() string {
	for _, l := range strings.Split(readFile("/etc/os-release"), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "unknown"
}

func meminfoKB(key string) (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == key {
			return strconv.ParseInt(fs[1], 10, 64)
		}
	}
	return 0, sc.Err()
}
