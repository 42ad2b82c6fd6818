package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Box memory is counted in MemAvailable, which every process on the
// machine moves: on a shared machine other work (compilers, other engines)
// allocates and frees hundreds of MiB between two readings. procMem splits
// the processes' memory into what the measurement owns (the engine, the
// providers, the containers) and the rest, so that the rest's change can
// be taken out of MemAvailable's.
type procMem struct {
	// Ours is the anonymous and shmem PSS of the engine (the dockerd the
	// benchmark talks to and that dockerd's containerd), the providers the
	// benchmark started, the engine's containerd shims, and their
	// descendants (the containers).
	Ours int64
	// Others is the anonymous and shmem memory of every other process
	// (the benchmark itself included): the box's AnonPages + Shmem less
	// Ours, read with MemAvailable, so that short-lived processes are
	// caught in the same read (sampleBox). File pages are left out:
	// MemAvailable counts them as available, so their growth must not be
	// taken out of its loss.
	Others int64
	// Engine and Provider are parts of Ours: the engine's dockerd and
	// containerd, and the providers: per-container state no cgroup shows.
	Engine, Provider int64
}

type procInfo struct {
	ppid        int
	comm        string
	args        []string
	anon, shmem int64 // bytes
}

// readProcs reads every process's parent, command line and anonymous and
// shmem PSS. Processes that end while it reads are skipped.
func readProcs() map[int]procInfo {
	out := map[int]procInfo{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		f := strings.Fields(s[closing+1:])
		if len(f) < 2 {
			continue
		}
		pi := procInfo{comm: s[open+1 : closing]}
		pi.ppid, _ = strconv.Atoi(f[1])
		cmd, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		pi.args = strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		pi.anon, pi.shmem = anonShmemPSS(filepath.Join(d, "smaps_rollup"))
		out[pid] = pi
	}
	return out
}

// anonShmemPSS reads Pss_Anon and Pss_Shmem of a smaps_rollup file, in
// bytes (0 for kernel threads and processes that are gone).
func anonShmemPSS(path string) (anon, shmem int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Pss_Anon:":
			anon = v * 1024
		case "Pss_Shmem:":
			shmem = v * 1024
		}
	}
	return anon, shmem
}

// argValue returns the value of a flag given as "-name v", "--name v" or
// "--name=v".
func argValue(args []string, names ...string) string {
	for i, a := range args {
		for _, n := range names {
			if a == n && i+1 < len(args) {
				return args[i+1]
			}
			if strings.HasPrefix(a, n+"=") {
				return strings.TrimPrefix(a, n+"=")
			}
		}
	}
	return ""
}

// isEngineDockerd says whether a dockerd serves dockerHost (the DOCKER_HOST
// the benchmark talks to; "" is the default socket).
func isEngineDockerd(args []string, dockerHost string) bool {
	host := argValue(args, "-H", "--host")
	if dockerHost == "" || dockerHost == "unix:///var/run/docker.sock" || dockerHost == "unix:///run/docker.sock" {
		return host == "" || host == "fd://" || strings.HasSuffix(host, "/docker.sock")
	}
	return host == dockerHost
}

// splitProcs sums the processes' memory as procMem says; providers are the
// PIDs of the providers the benchmark started.
func splitProcs(procs map[int]procInfo, dockerHost string, providers []int) procMem {
	const (
		other = iota
		engine
		provider
		owned // shims and containers
	)
	roots := map[int]int{}
	for _, pid := range providers {
		roots[pid] = provider
	}
	var engineDirs []string
	for pid, p := range procs {
		if p.comm == "dockerd" && isEngineDockerd(p.args, dockerHost) {
			roots[pid] = engine
			for _, c := range procs {
				if c.ppid == pid && c.comm == "containerd" {
					if cfg := argValue(c.args, "--config", "-c"); cfg != "" {
						engineDirs = append(engineDirs, filepath.Dir(cfg)+"/")
					}
				}
			}
		}
	}
	for pid, p := range procs {
		if !strings.HasPrefix(p.comm, "containerd-shim") {
			continue
		}
		// A shim names its containerd with -address. Without the engine's
		// own containerd found, every shim counts as owned: the error is
		// then on the side of counting too much against the functions.
		addr := argValue(p.args, "-address")
		mine := len(engineDirs) == 0
		for _, d := range engineDirs {
			mine = mine || strings.HasPrefix(addr, d)
		}
		if mine {
			roots[pid] = owned
		}
	}
	var m procMem
	for pid, p := range procs {
		kind := other
		for q, hops := pid, 0; q > 1 && hops < 64; hops++ {
			if k, ok := roots[q]; ok {
				kind = k
				break
			}
			q = procs[q].ppid
		}
		if kind != other {
			m.Ours += p.anon + p.shmem
		}
		switch kind {
		case engine:
			m.Engine += p.anon + p.shmem
		case provider:
			m.Provider += p.anon + p.shmem
		}
	}
	return m
}
