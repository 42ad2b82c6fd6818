package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Issue 13 sets the trivial wake against "the measured cold start of a
// trivial function started by containerd directly" (faasd 0.19 drives
// containerd so: 132 ms from deploy to first answer on this machine). The
// floor phase measures that cold start in the same run: the same fixture
// image, started by the engine's own containerd with its ctr, in a
// containerd namespace of the benchmark's own (never dockerd's "moby").
//
// faasd gives each function a CNI bridge; this machine has no CNI plugins.
// The container joins a network namespace the benchmark prepared before
// the timing (a veth pair onto a bridge of its own), so that network setup
// is left out: containerd's figure is the faster for it, and the bar the
// trivial wake is judged against the stricter.

// Names of the containerd-direct measurement (renamed with the networks:
// see renameNetworks).
var (
	ctrNamespace = "faas-criu-bench"
	ctrBridge    = "fcb-ctrd"      // interface names: at most 15 characters
	ctrVeth      = "fcb-cv"        // the host's ends, numbered
	ctrSubnet    = "10.77.16.0/24" // after the scale subnet (10.77.8.0/21)
)

// ctrSamples is how many cold starts the floor takes (a first one, not
// counted, warms containerd, the shim and the page cache).
func ctrSamples(floorSamples int) int { return max(floorSamples, 5) }

// ctrdFigures are the containerd-direct cold start's samples.
type ctrdFigures struct {
	// ColdStart runs from the start of `ctr run -d` to /count's answer.
	ColdStart []time.Duration
	// RunCall is `ctr run -d` alone: create and start, returned.
	RunCall []time.Duration
	// CtrOverhead is `ctr version` against the same socket: ctr's own
	// start and connection, part of every ctr call.
	CtrOverhead []time.Duration
	Socket      string
	Namespace   string
}

// ctr runs the ctr binary against one containerd socket and namespace.
type ctr struct {
	bin, sock, ns string
}

func (c ctr) cmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, c.bin, append([]string{"-a", c.sock, "-n", c.ns}, args...)...)
}

func (c ctr) run(ctx context.Context, args ...string) (string, error) {
	out, err := c.cmd(ctx, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// floorContainerd measures the containerd-direct cold start of the trivial
// fixture, samples times, each in a fresh container removed after; every
// thing it creates is removed on return, also on failure.
func (b *bench) floorContainerd(ctx context.Context, samples int) (f *ctrdFigures, err error) {
	bin, err := exec.LookPath("ctr")
	if err != nil {
		return nil, fmt.Errorf("containerd's ctr is not on PATH (Debian: package containerd): %w", err)
	}
	sock, err := engineContainerd(os.Getenv("DOCKER_HOST"), b.dockerRoot)
	if err != nil {
		return nil, err
	}
	c := ctr{bin: bin, sock: sock, ns: ctrNamespace}
	f = &ctrdFigures{Socket: sock, Namespace: c.ns}
	cleanup := func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return errors.Join(c.removeAll(cctx), removeCtrNetwork(cctx))
	}
	if err := cleanup(); err != nil { // an earlier run's, interrupted
		return f, fmt.Errorf("leftovers of an earlier run: %w", err)
	}
	defer func() {
		if cerr := cleanup(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
	}()
	ref, err := b.importFixture(ctx, c)
	if err != nil {
		return f, err
	}
	hostIP, err := addCtrBridge(ctx)
	if err != nil {
		return f, err
	}
	warm := &ctrdFigures{}
	for i := 0; i <= samples; i++ {
		rec := f
		if i == 0 {
			rec = warm
		}
		if err := c.coldStart(ctx, ref, hostIP, i, rec); err != nil {
			return f, fmt.Errorf("sample %d: %w", i, err)
		}
		start := time.Now()
		if _, err := exec.CommandContext(ctx, c.bin, "-a", c.sock, "version").CombinedOutput(); err != nil {
			return f, fmt.Errorf("ctr version: %w", err)
		}
		rec.CtrOverhead = append(rec.CtrOverhead, time.Since(start))
	}
	return f, nil
}

// importFixture copies the fixture image from Docker into the namespace
// (docker save | ctr images import, unpacked) and returns its name there.
func (b *bench) importFixture(ctx context.Context, c ctr) (string, error) {
	rc, err := b.docker.ImageSave(ctx, []string{fixtureImage})
	if err != nil {
		return "", fmt.Errorf("docker save %s: %w", fixtureImage, err)
	}
	defer rc.Close()
	cmd := c.cmd(ctx, "images", "import", "-")
	cmd.Stdin = rc
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("ctr images import: %w: %s", err, strings.TrimSpace(string(out)))
	}
	out, err := c.run(ctx, "images", "ls", "-q")
	if err != nil {
		return "", err
	}
	for _, ref := range strings.Fields(out) {
		// Docker's name, as containerd normalises it (docker.io/...).
		if strings.HasSuffix(ref, fixtureImage) {
			return ref, nil
		}
	}
	return "", fmt.Errorf("ctr images import: no %s among %q", fixtureImage, out)
}

// coldStart times one cold start: a network namespace on the bridge is
// made first, untimed; the clock runs from `ctr run -d` to /count's answer.
func (c ctr) coldStart(ctx context.Context, ref, hostIP string, i int, f *ctrdFigures) error {
	netns := fmt.Sprintf("%s-%d", ctrBridge, i)
	ip, err := addCtrNetns(ctx, netns, hostIP, i)
	if err != nil {
		return err
	}
	id := fmt.Sprintf("floor-cold-%d", i)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		c.removeContainer(cctx, id)
		_ = exec.CommandContext(cctx, "ip", "netns", "del", netns).Run()
	}()
	start := time.Now()
	if _, err := c.run(ctx, "run", "-d", "--null-io", "--with-ns", "network:/var/run/netns/"+netns, ref, id); err != nil {
		return err
	}
	f.RunCall = append(f.RunCall, time.Since(start))
	if err := awaitCount(ctx, net.JoinHostPort(ip, "8080"), 1, 30*time.Second); err != nil {
		return err
	}
	f.ColdStart = append(f.ColdStart, time.Since(start))
	return nil
}

// removeContainer kills and deletes a container's task, then the container
// with its snapshot; errors are for removeAll to find what is left.
func (c ctr) removeContainer(ctx context.Context, id string) {
	_, _ = c.run(ctx, "tasks", "rm", "-f", id)
	_, _ = c.run(ctx, "containers", "rm", id)
}

// removeAll empties the benchmark's namespace (containers, images, leases,
// content, snapshots) and removes it; containerd refuses to remove a
// namespace that still holds anything, which is the check.
func (c ctr) removeAll(ctx context.Context) error {
	out, err := c.run(ctx, "namespaces", "ls", "-q")
	if err != nil {
		return err
	}
	if !slices.Contains(strings.Fields(out), c.ns) {
		return removeCgroups(c.ns)
	}
	list := func(args ...string) []string {
		out, _ := c.run(ctx, append(args, "ls", "-q")...)
		return strings.Fields(out)
	}
	for _, id := range list("containers") {
		c.removeContainer(ctx, id)
	}
	if imgs := list("images"); len(imgs) > 0 {
		_, _ = c.run(ctx, append([]string{"images", "rm", "--sync"}, imgs...)...)
	}
	for _, l := range list("leases") {
		_, _ = c.run(ctx, "leases", "rm", l)
	}
	if blobs := list("content"); len(blobs) > 0 {
		_, _ = c.run(ctx, append([]string{"content", "rm"}, blobs...)...)
	}
	// A parent snapshot goes only after its children: passes until none
	// goes.
	for keys, n := c.snapshotKeys(ctx), -1; len(keys) > 0 && len(keys) != n; keys, n = c.snapshotKeys(ctx), len(keys) {
		for _, k := range keys {
			_, _ = c.run(ctx, "snapshots", "rm", k)
		}
	}
	if _, err := c.run(ctx, "namespaces", "rm", c.ns); err != nil {
		return fmt.Errorf("containerd namespace %s not emptied: %w", c.ns, err)
	}
	return removeCgroups(c.ns)
}

// snapshotKeys lists the namespace's snapshots.
func (c ctr) snapshotKeys(ctx context.Context) []string {
	out, _ := c.run(ctx, "snapshots", "ls")
	var keys []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[0] != "KEY" {
			keys = append(keys, f[0])
		}
	}
	return keys
}

// removeCgroups removes the cgroups ctr's containers were put under
// (/NAMESPACE/ID by default): runc removes each container's own, not their
// parent. Only empty cgroups can be removed, so nothing else goes.
func removeCgroups(ns string) error {
	var errs []error
	for _, pat := range []string{"/sys/fs/cgroup/*/" + ns, "/sys/fs/cgroup/" + ns} {
		dirs, _ := filepath.Glob(pat)
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// addCtrBridge makes the bridge the cold starts' network namespaces hang
// on, with the host's address on it (.1 of ctrSubnet), and returns that
// address.
func addCtrBridge(ctx context.Context) (string, error) {
	ip, _, err := net.ParseCIDR(ctrSubnet)
	if err != nil {
		return "", fmt.Errorf("containerd floor subnet %q: %w", ctrSubnet, err)
	}
	v4 := ip.To4()
	host := net.IPv4(v4[0], v4[1], v4[2], 1).String()
	return host, ipAll(ctx, [][]string{
		{"link", "add", ctrBridge, "type", "bridge"},
		{"addr", "add", host + "/24", "dev", ctrBridge},
		{"link", "set", ctrBridge, "up"},
	})
}

// addCtrNetns makes network namespace name with a veth pair onto the
// bridge, eth0 inside at .(10+i) of the bridge's /24, and returns that
// address.
func addCtrNetns(ctx context.Context, name, hostIP string, i int) (string, error) {
	ip := net.ParseIP(hostIP).To4()
	addr := net.IPv4(ip[0], ip[1], ip[2], byte(10+i)).String()
	veth := fmt.Sprintf("%s%d", ctrVeth, i) // the host's end
	return addr, ipAll(ctx, [][]string{
		{"netns", "add", name},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name},
		{"link", "set", veth, "master", ctrBridge, "up"},
		{"-n", name, "addr", "add", addr + "/24", "dev", "eth0"},
		{"-n", name, "link", "set", "eth0", "up"},
		{"-n", name, "link", "set", "lo", "up"},
	})
}

// ipAll runs each `ip` command in turn, stopping at the first that fails.
func ipAll(ctx context.Context, cmds [][]string) error {
	for _, args := range cmds {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// removeCtrNetwork removes the network namespaces (their veth pairs go
// with them) and the bridge, whichever exist.
func removeCtrNetwork(ctx context.Context) error {
	var errs []error
	out, _ := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], ctrBridge+"-") {
			if out, err := exec.CommandContext(ctx, "ip", "netns", "del", f[0]).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", f[0], err, out))
			}
		}
	}
	if exec.CommandContext(ctx, "ip", "link", "show", ctrBridge).Run() == nil {
		if out, err := exec.CommandContext(ctx, "ip", "link", "del", ctrBridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link del %s: %w: %s", ctrBridge, err, out))
		}
	}
	return errors.Join(errs...)
}

// engineContainerd finds the gRPC socket of the containerd the engine
// talks to: dockerd's --containerd if it was given one, else that of the
// containerd dockerd runs itself (Docker 20.10: its child, started with
// --config EXEC_ROOT/containerd/containerd.toml), whose root must lie in
// the engine's data root. FAAS_CRIU_BENCH_CONTAINERD overrides the search.
func engineContainerd(dockerHost, dockerRoot string) (string, error) {
	if s := os.Getenv("FAAS_CRIU_BENCH_CONTAINERD"); s != "" {
		return s, nil
	}
	procs := readProcs()
	var tried []string
	for pid, p := range procs {
		if p.comm != "dockerd" || !isEngineDockerd(p.args, dockerHost) {
			continue
		}
		if s := argValue(p.args, "--containerd"); s != "" {
			return s, nil
		}
		for _, child := range procs {
			cfg := argValue(child.args, "--config", "-c")
			if child.ppid != pid || child.comm != "containerd" || cfg == "" {
				continue
			}
			toml, err := os.ReadFile(cfg)
			if err != nil {
				tried = append(tried, err.Error())
				continue
			}
			root, addr := containerdConfig(string(toml))
			if addr == "" {
				addr = filepath.Join(filepath.Dir(cfg), "containerd.sock")
			}
			if dockerRoot != "" && !strings.HasPrefix(root, filepath.Clean(dockerRoot)+"/") {
				tried = append(tried, fmt.Sprintf("%s: root %q is not in the engine's data root %s", cfg, root, dockerRoot))
				continue
			}
			return addr, nil
		}
	}
	return "", fmt.Errorf("the engine's containerd socket not found (no dockerd serving %q with a containerd of its own or --containerd; %s): set FAAS_CRIU_BENCH_CONTAINERD",
		dockerHost, strings.Join(tried, "; "))
}

// containerdConfig reads the root and [grpc] address of a containerd
// configuration (TOML, as dockerd writes it).
func containerdConfig(toml string) (root, addr string) {
	section := ""
	for _, line := range strings.Split(toml, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[] ")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		switch {
		case section == "" && k == "root":
			root = v
		case section == "grpc" && k == "address":
			addr = v
		}
	}
	return root, addr
}
