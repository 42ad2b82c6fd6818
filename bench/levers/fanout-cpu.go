//go:build ignore

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
)

// engCPU is the CPU of the engine's parts over a fan-out round (bench/levers/fanout-ab.sh
// copies this file into a copy of the tree, without its build tag).
type engCPU struct {
	prov, dockerd, containerd, engineCG, cts time.Duration
}

func procCPU(pid int, children bool) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var t uint64
	n := 2
	if children {
		n = 4
	}
	for i := 0; i < n; i++ {
		v, _ := strconv.ParseUint(f[11+i], 10, 64)
		t += v
	}
	return time.Duration(t) * 10 * time.Millisecond
}

func cgUsage(path string) time.Duration {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(v)
}

func envPID(k string) int { v, _ := strconv.Atoi(os.Getenv(k)); return v }

func (b *bench) engSnap(ctx context.Context, provPID int) engCPU {
	var e engCPU
	e.prov = procCPU(provPID, true)
	if p := envPID("FANOUT_DOCKERD_PID"); p > 0 {
		e.dockerd = procCPU(p, false)
	}
	if p := envPID("FANOUT_CONTAINERD_PID"); p > 0 {
		e.containerd = procCPU(p, true)
	}
	if cg := os.Getenv("FANOUT_ENGINE_CG"); cg != "" {
		e.engineCG = cgUsage(cg + "/cpuacct.usage")
	}
	cs, err := b.docker.ContainerList(ctx, container.ListOptions{All: true})
	if err == nil {
		for _, c := range cs {
			e.cts += cgUsage("/sys/fs/cgroup/cpuacct/docker/" + c.ID + "/cpuacct.usage")
		}
	}
	return e
}

func (e engCPU) String(o engCPU, n int) string {
	per := func(a, b time.Duration) string { return fmt.Sprintf("%.1f", float64(a-b)/float64(n)/1e6) }
	rest := (e.engineCG - o.engineCG) - (e.dockerd - o.dockerd) - (e.containerd - o.containerd)
	return fmt.Sprintf("CPU ms per wake: provider %s dockerd %s containerd(+waited) %s shims+runc %.1f containers(criu+fn) %s engineCG %s",
		per(e.prov, o.prov), per(e.dockerd, o.dockerd), per(e.containerd, o.containerd), float64(rest)/float64(n)/1e6, per(e.cts, o.cts), per(e.engineCG, o.engineCG))
}
