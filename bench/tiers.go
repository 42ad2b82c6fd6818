package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// The sleep tiers phase (issue 13): what a hibernated function costs the box
// in each tier, counted in MemAvailable and not in cgroups, and how long a
// wake from each tier takes.
//
//   - hibernated: checkpointed, its network sandbox kept running (a
//     containerd shim, a network namespace, a cgroup and mounts per replica);
//   - deep: checkpointed, its sandbox stopped too (com.openfaas.criu.deep-after).

// boxSample is the machine's memory accounting at one moment, page cache
// dropped first.
type boxSample struct {
	MemAvailable int64
	// Kernel counters that move with sandboxes (less noisy than
	// MemAvailable on a shared machine).
	KernelStack, PageTables, SUnreclaim int64
	// Shims is the number of containerd-shim-runc-v2 processes on the box,
	// OwnShims those serving the tier functions' containers, and OwnShimPSS
	// their proportional resident memory in all.
	Shims, OwnShims int
	OwnShimPSS      int64
	// Cgroups is the working set of the tier functions' cgroups, sandboxes
	// included: the old way of counting.
	Cgroups int64
}

// tiersResult is the phase's outcome.
type tiersResult struct {
	N        int // functions in the memory measurement
	Base     []boxSample
	Kept     []boxSample // hibernated, sandbox kept; one per round
	Deep     []boxSample // the same functions, sandboxes stopped
	WakeKept []time.Duration
	WakeDeep []time.Duration
	Failures []string
}

// sampleBox drops the page cache and reads the box's memory: medians of
// nine reads 200 ms apart, since other work on the machine moves them.
func (b *bench) sampleBox(ctx context.Context, p *Provider, prefix string) (boxSample, error) {
	if err := exec.CommandContext(ctx, "sync").Run(); err != nil {
		return boxSample{}, fmt.Errorf("sync: %w", err)
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0); err != nil {
		return boxSample{}, fmt.Errorf("drop the page cache (needs root): %w", err)
	}
	var avail, kstack, ptables, sunrec []int64
	for i := 0; i < 9; i++ {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		m, err := readMeminfo()
		if err != nil {
			return boxSample{}, err
		}
		avail = append(avail, m["MemAvailable"])
		kstack = append(kstack, m["KernelStack"])
		ptables = append(ptables, m["PageTables"])
		sunrec = append(sunrec, m["SUnreclaim"])
	}
	s := boxSample{MemAvailable: IntMedian(avail), KernelStack: IntMedian(kstack), PageTables: IntMedian(ptables), SUnreclaim: IntMedian(sunrec)}
	list, err := b.tierContainers(ctx, p, prefix)
	if err != nil {
		return s, err
	}
	ids := map[string]bool{}
	for _, c := range list {
		ids[c.ID] = true
	}
	s.Shims, s.OwnShims, s.OwnShimPSS = shimUsage(ids)
	for _, c := range list {
		ws, _, err := workingSet(c.ID)
		if err != nil {
			return s, err
		}
		s.Cgroups += ws
	}
	return s, nil
}

// readMeminfo reads /proc/meminfo, in bytes.
func readMeminfo() (map[string]int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 {
			v, _ := strconv.ParseInt(fs[1], 10, 64)
			if len(fs) == 3 && fs[2] == "kB" {
				v *= 1024
			}
			out[strings.TrimSuffix(fs[0], ":")] = v
		}
	}
	return out, sc.Err()
}

// shimUsage counts the containerd-shim-runc-v2 processes on the box, and
// those of the containers in ids (a shim names its container with -id),
// adding up their proportional set size (shared pages divided among their
// users).
func shimUsage(ids map[string]bool) (all, own int, pss int64) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		args := strings.Split(string(b), "\x00")
		if err != nil || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim-runc-v2") {
			continue
		}
		all++
		mine := false
		for i, a := range args[:len(args)-1] {
			if a == "-id" && ids[args[i+1]] {
				mine = true
			}
		}
		if !mine {
			continue
		}
		own++
		if v, err := rollupKB(filepath.Join(d, "smaps_rollup"), "Pss:"); err == nil {
			pss += v * 1024
		}
	}
	return all, own, pss
}

// rollupKB reads one "Key:   N kB" line of a /proc smaps_rollup file.
func rollupKB(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == key {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// tierContainers lists the containers (sandboxes included) of the
// provider's functions whose names start with prefix.
func (b *bench) tierContainers(ctx context.Context, p *Provider, prefix string) ([]container.Summary, error) {
	f := filters.NewArgs(filters.Arg("label", "io.faas-criu.instance="+p.InstanceID()))
	list, err := b.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	var out []container.Summary
	for _, c := range list {
		if strings.HasPrefix(c.Labels["com.openfaas.function"], prefix) {
			out = append(out, c)
		}
	}
	return out, nil
}

// setSandboxes stops or starts the sandboxes of the functions named with
// prefix, through Docker, as the deep-after policy and the wake path do.
func (b *bench) setSandboxes(ctx context.Context, p *Provider, prefix string, up bool) error {
	list, err := b.tierContainers(ctx, p, prefix)
	if err != nil {
		return err
	}
	for _, c := range list {
		if c.Labels["io.faas-criu.role"] != "sandbox" {
			continue
		}
		if up {
			err = b.docker.ContainerStart(ctx, c.ID, container.StartOptions{})
		} else {
			zero := 0
			err = b.docker.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &zero})
		}
		if err != nil {
			return fmt.Errorf("sandbox %s: %w", c.Names, err)
		}
	}
	return nil
}

// runTiers measures both tiers: box memory over n hibernated functions,
// alternating their sandboxes kept and stopped for rounds rounds between two
// readings with none deployed; then the wake from each tier, samples times,
// alternated.
func (b *bench) runTiers(ctx context.Context, p *Provider, n, rounds, samples int) (*tiersResult, error) {
	res := &tiersResult{N: n}
	const prefix = "tier-mem-"
	base, err := b.sampleBox(ctx, p, prefix)
	if err != nil {
		return nil, err
	}
	res.Base = append(res.Base, base)
	b.progress("tiers: deploying %d functions", n)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%02d", prefix, i)
		// never: the policy leaves them alone while the benchmark moves
		// them between the tiers.
		dep := types.FunctionDeployment{Service: names[i], Image: fixtureImage, Labels: &map[string]string{
			api.LabelStrategy: api.StrategyCheckpoint, api.LabelDeepAfter: "never", benchLabel: "tiers"}}
		if err := p.Deploy(ctx, dep); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		if err := p.WaitAvailable(ctx, name, 1, time.Minute); err != nil {
			return nil, err
		}
		if _, _, err := p.Invoke(ctx, name, "/count"); err != nil {
			return nil, err
		}
	}
	b.progress("tiers: hibernating %d functions", n)
	for _, name := range names {
		if _, err := p.Scale(ctx, name, 0); err != nil {
			return nil, err
		}
		if err := waitAnnotation(ctx, p, name, "com.openfaas.criu.state", "hibernated", time.Minute); err != nil {
			return nil, err
		}
	}
	b.track(ctx)
	waitTier := func(tier string) error {
		for _, name := range names {
			if err := waitAnnotation(ctx, p, name, "com.openfaas.criu.tier", tier, time.Minute); err != nil {
				return err
			}
		}
		time.Sleep(2 * time.Second) // the kernel frees namespaces lazily
		return nil
	}
	for r := range rounds {
		b.progress("tiers: memory round %d of %d", r+1, rounds)
		if r > 0 {
			if err := b.setSandboxes(ctx, p, prefix, true); err != nil {
				return nil, err
			}
		}
		if err := waitTier("hibernated"); err != nil {
			return nil, err
		}
		s, err := b.sampleBox(ctx, p, prefix)
		if err != nil {
			return nil, err
		}
		res.Kept = append(res.Kept, s)
		if err := b.setSandboxes(ctx, p, prefix, false); err != nil {
			return nil, err
		}
		if err := waitTier("deep"); err != nil {
			return nil, err
		}
		if s, err = b.sampleBox(ctx, p, prefix); err != nil {
			return nil, err
		}
		res.Deep = append(res.Deep, s)
	}
	// Every function wakes from deep with its state.
	b.progress("tiers: waking %d functions from deep", n)
	for _, name := range names {
		body, _, err := p.Invoke(ctx, name, "/count")
		if err == nil && body != "2" {
			err = fmt.Errorf("%s /count after a deep sleep: %q, want 2 (state lost)", name, body)
		}
		if err != nil {
			res.Failures = append(res.Failures, "tiers: "+err.Error())
		}
	}
	for _, name := range names {
		if err := p.Delete(ctx, name); err != nil {
			return nil, err
		}
	}
	time.Sleep(3 * time.Second)
	if base, err = b.sampleBox(ctx, p, prefix); err != nil {
		return nil, err
	}
	res.Base = append(res.Base, base)

	if err := b.tierWakes(ctx, p, res, samples); err != nil {
		return nil, err
	}
	return res, nil
}

// tierWakes times the wake from each tier: one function that never goes
// deep, one that goes deep a second after it hibernates (by the provider's
// own policy), alternated.
func (b *bench) tierWakes(ctx context.Context, p *Provider, res *tiersResult, samples int) error {
	fns := []struct{ name, deepAfter, tier string }{
		{"tier-wake-kept", "never", "hibernated"},
		{"tier-wake-deep", "1s", "deep"},
	}
	counts := map[string]int{}
	for _, f := range fns {
		dep := types.FunctionDeployment{Service: f.name, Image: fixtureImage, Labels: &map[string]string{
			api.LabelStrategy: api.StrategyCheckpoint, api.LabelDeepAfter: f.deepAfter, benchLabel: "tiers"}}
		if err := p.Deploy(ctx, dep); err != nil {
			return err
		}
		if err := p.WaitAvailable(ctx, f.name, 1, time.Minute); err != nil {
			return err
		}
		if _, _, err := p.Invoke(ctx, f.name, "/count"); err != nil {
			return err
		}
		counts[f.name] = 1
	}
	for i := range samples {
		b.progress("tiers: wake sample %d of %d", i+1, samples)
		for _, f := range fns {
			if _, err := p.Scale(ctx, f.name, 0); err != nil {
				return err
			}
			if err := waitAnnotation(ctx, p, f.name, "com.openfaas.criu.tier", f.tier, time.Minute); err != nil {
				return err
			}
			b.track(ctx)
			time.Sleep(time.Second)
			body, ttfb, err := p.Invoke(ctx, f.name, "/count")
			counts[f.name]++
			if err == nil && body != strconv.Itoa(counts[f.name]) {
				err = fmt.Errorf("%s /count after a wake from %s: %q, want %d (state lost)", f.name, f.tier, body, counts[f.name])
			}
			if err != nil {
				res.Failures = append(res.Failures, "tiers: "+err.Error())
				continue
			}
			if f.tier == "deep" {
				res.WakeDeep = append(res.WakeDeep, ttfb)
			} else {
				res.WakeKept = append(res.WakeKept, ttfb)
			}
		}
	}
	for _, f := range fns {
		if err := p.Delete(ctx, f.name); err != nil {
			return err
		}
	}
	return nil
}

// perFn is the median over samples of what n functions cost the box against
// the baseline (none deployed): less MemAvailable, more of a kernel counter.
func perFn(base, xs []boxSample, n int, field func(boxSample) int64, lessIsMore bool) int64 {
	var bs []int64
	for _, s := range base {
		bs = append(bs, field(s))
	}
	b := IntMedian(bs)
	var d []int64
	for _, s := range xs {
		if lessIsMore {
			d = append(d, (b-field(s))/int64(n))
		} else {
			d = append(d, (field(s)-b)/int64(n))
		}
	}
	return IntMedian(d)
}

func fmtMiB(b int64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

// boxPerFn is MemAvailable lost per function in a tier.
func (t *tiersResult) boxPerFn(xs []boxSample) int64 {
	return perFn(t.Base, xs, t.N, func(s boxSample) int64 { return s.MemAvailable }, true)
}

// sandboxCost is the paired difference, round by round, between the two
// tiers: what keeping the sandboxes costs per function.
func (t *tiersResult) sandboxCost() int64 {
	var d []int64
	for i := range min(len(t.Kept), len(t.Deep)) {
		d = append(d, (t.Deep[i].MemAvailable-t.Kept[i].MemAvailable)/int64(t.N))
	}
	return IntMedian(d)
}

// baseDrift is how far MemAvailable moved per function between the two
// baselines, none deployed: the noise of the box figure.
func (t *tiersResult) baseDrift() int64 {
	if len(t.Base) < 2 {
		return 0
	}
	d := t.Base[0].MemAvailable - t.Base[len(t.Base)-1].MemAvailable
	return max(d, -d) / int64(t.N)
}

// accounted is what the function's shims, the kernel's counters and the
// cgroups say a tier costs per function.
func (t *tiersResult) accounted(xs []boxSample) int64 {
	var pss, cg []int64
	for _, s := range xs {
		pss = append(pss, s.OwnShimPSS)
		cg = append(cg, s.Cgroups)
	}
	kern := perFn(t.Base, xs, t.N, func(s boxSample) int64 { return s.KernelStack + s.PageTables + s.SUnreclaim }, false)
	return (IntMedian(pss)+IntMedian(cg))/int64(t.N) + max(kern, 0)
}

// Section reports the tiers.
func (t *tiersResult) Section() Section {
	mem := table{Header: []string{"tier", "box: MemAvailable lost per function", "cgroups per function (old figure)", "shims of these functions (all on the box)", "shim PSS per function", "kernel stacks + page tables + unreclaimable slab per function", "accounted: shim + kernel + cgroups"}}
	row := func(name string, xs []boxSample) {
		var shims, own, pss, cg []int64
		for _, s := range xs {
			shims = append(shims, int64(s.Shims))
			own = append(own, int64(s.OwnShims))
			pss = append(pss, s.OwnShimPSS)
			cg = append(cg, s.Cgroups)
		}
		var bshims []int64
		for _, s := range t.Base {
			bshims = append(bshims, int64(s.Shims))
		}
		kern := perFn(t.Base, xs, t.N, func(s boxSample) int64 { return s.KernelStack + s.PageTables + s.SUnreclaim }, false)
		mem.add(name, fmtMiB(t.boxPerFn(xs)), fmtBytes(IntMedian(cg)/int64(t.N)),
			fmt.Sprintf("%d (%d; %d with none deployed)", IntMedian(own), IntMedian(shims), IntMedian(bshims)),
			fmtMiB(IntMedian(pss)/int64(t.N)), fmtMiB(kern), fmtMiB(t.accounted(xs)))
	}
	row("hibernated (sandbox kept)", t.Kept)
	row("deep (sandbox stopped)", t.Deep)
	var bases []string
	for _, s := range t.Base {
		bases = append(bases, fmtBytes(s.MemAvailable))
	}
	var rounds []string
	for i := range min(len(t.Kept), len(t.Deep)) {
		rounds = append(rounds, fmt.Sprintf("%s / %s", fmtBytes(t.Kept[i].MemAvailable), fmtBytes(t.Deep[i].MemAvailable)))
	}
	wake := table{Header: []string{"tier", "wake, first byte (median)", "spread", "samples"}}
	wake.add("hibernated (sandbox kept)", fmtDur(DurMedian(t.WakeKept)), fmtDur(DurPercentile(t.WakeKept, 0))+" - "+fmtDur(DurPercentile(t.WakeKept, 100)), strconv.Itoa(len(t.WakeKept)))
	wake.add("deep (sandbox stopped)", fmtDur(DurMedian(t.WakeDeep)), fmtDur(DurPercentile(t.WakeDeep, 0))+" - "+fmtDur(DurPercentile(t.WakeDeep, 100)), strconv.Itoa(len(t.WakeDeep)))
	body := fmt.Sprintf(`%d trivial functions deployed, called once and hibernated, then moved between the two tiers %d times: sandboxes running (hibernated) and stopped with Docker (deep: the state the deep-after policy leaves, which stops them the same way). Before each reading: `+"`sync; echo 1 > /proc/sys/vm/drop_caches`"+`, then the median of nine reads of /proc/meminfo 200 ms apart. The baseline is the box with none of them deployed, before and after (%s: it moved %s per function meanwhile, the noise of the MemAvailable column). MemAvailable per tier and round (hibernated / deep): %s. The paired difference, round by round, says what the sandboxes cost: **%s per function**. Every function then woke from deep with its count kept. On a shared machine other work moves MemAvailable by tens of MiB between reads: the shim and kernel columns are the steadier figures. The cgroup column is the old way of counting: a hibernated function's own cgroup is gone, and the sandbox's holds a few KiB.

`, t.N, len(t.Kept), strings.Join(bases, ", "), fmtMiB(t.baseDrift()), strings.Join(rounds, "; "), fmtMiB(t.sandboxCost())) + mem.Markdown() +
		"\n\nWake from each tier, through the provider (`GET /function/NAME/count`, time to first byte), alternated; the deep function went deep by its own `com.openfaas.criu.deep-after=1s`, so its wake starts the sandbox (one plain container start) before the restore:\n\n" + wake.Markdown()
	return Section{Title: "9. Sleep tiers: box memory and wake", Body: body}
}
