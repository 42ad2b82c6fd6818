package main

import "testing"

// The measurement's own processes (the engine it talks to, its containerd,
// that containerd's shims and their containers, the providers) are told
// from other work (another engine and its shims, the benchmark itself).
func TestSplitProcs(t *testing.T) {
	const mi = 1 << 20
	procs := map[int]procInfo{
		10: {ppid: 1, comm: "dockerd", args: []string{"dockerd", "--host", "unix:///var/run/e-mine.sock"}, anon: 50 * mi},
		11: {ppid: 10, comm: "containerd", args: []string{"containerd", "--config", "/var/run/e-mine/containerd/containerd.toml"}, anon: 30 * mi},
		12: {ppid: 1, comm: "containerd-shim", args: []string{"containerd-shim-runc-v2", "-id", "abc", "-address", "/var/run/e-mine/containerd/containerd.sock"}, anon: 2 * mi},
		13: {ppid: 12, comm: "fixture", anon: 5 * mi, shmem: mi},
		20: {ppid: 1, comm: "dockerd", args: []string{"dockerd", "--host", "unix:///var/run/e-other.sock"}, anon: 70 * mi},
		21: {ppid: 20, comm: "containerd", args: []string{"containerd", "--config", "/var/run/e-other/containerd/containerd.toml"}, anon: 40 * mi},
		22: {ppid: 1, comm: "containerd-shim", args: []string{"containerd-shim-runc-v2", "-id", "def", "-address", "/var/run/e-other/containerd/containerd.sock"}, anon: 3 * mi},
		23: {ppid: 22, comm: "other-fn", anon: 100 * mi},
		30: {ppid: 1, comm: "bench", anon: 20 * mi},
		31: {ppid: 30, comm: "faas-criu", anon: 15 * mi},
		32: {ppid: 31, comm: "criu", anon: 4 * mi},
	}
	got := splitProcs(procs, "unix:///var/run/e-mine.sock", []int{31})
	want := procMem{Ours: (50 + 30 + 2 + 5 + 1 + 15 + 4) * mi, Engine: 80 * mi, Provider: 19 * mi}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// The default socket: the dockerd without --host.
	procs[10] = procInfo{ppid: 1, comm: "dockerd", args: []string{"dockerd"}, anon: 50 * mi}
	if got := splitProcs(procs, "", []int{31}); got != want {
		t.Errorf("default engine: got %+v, want %+v", got, want)
	}
}
