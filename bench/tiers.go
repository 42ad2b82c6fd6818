package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
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
	// MemAvailable on a shared machine), and tmpfs (Shmem).
	KernelStack, PageTables, SUnreclaim, Shmem int64
	// Percpu holds, among others, what dying memory cgroups of stopped
	// containers keep until their pages are gone.
	Percpu int64
	// SReclaimable is slab the kernel frees under pressure (dentries,
	// inodes): MemAvailable counts it as available, as it does the page
	// cache, so it is reported beside it.
	SReclaimable int64
	// The processes' anonymous memory: the engine's, the providers', and
	// the rest of the machine's (procmem.go).
	procMem
	// Shims is the number of containerd-shim-runc-v2 processes on the box,
	// OwnShims those serving the tier functions' containers, and OwnShimPSS
	// their proportional resident memory in all.
	Shims, OwnShims int
	OwnShimPSS      int64
	// Cgroups is the working set of the tier functions' cgroups, sandboxes
	// included: the old way of counting.
	Cgroups int64
	// Jitter is the spread of the sample's corrected reads.
	Jitter int64
}

// corrected is MemAvailable as if the machine's other processes had kept
// the anonymous memory they had at the baseline: its loss against a
// baseline is MemAvailable's loss minus the others' growth.
func (s boxSample) corrected() int64 { return s.MemAvailable + s.Others }

// kernel is the kernel's memory that moves with containers: stacks, page
// tables, unreclaimable slab, tmpfs, per-CPU areas.
func (s boxSample) kernel() int64 {
	return s.KernelStack + s.PageTables + s.SUnreclaim + s.Shmem + s.Percpu
}

// tiersResult is the phase's outcome.
type tiersResult struct {
	N int // functions in the memory measurement
	// Base: none deployed, boxReads samples before the deploys (the first
	// BaseBefore), then as many right after the deletion.
	Base       []boxSample
	BaseBefore int
	Kept       []boxSample // hibernated, sandbox kept; one per round
	Deep       []boxSample // the same functions, sandboxes stopped; boxReads per round
	WakeKept   []time.Duration
	WakeDeep   []time.Duration
	Failures   []string
	// InPlace is the in-place tier's memory measurement (tierInPlace): its
	// own N, baselines and samples hibernated in place (in its Kept); nil
	// when not measured, InPlaceWhy saying why.
	InPlace    *tiersResult
	InPlaceWhy string
	// Wakes from in place and from the deep tier reached from in place.
	WakeInPlace, WakeInPlaceDeep []time.Duration
	// InPlaceFailures counts the in-place tier's failures (also in
	// Failures): its figures are then not judged.
	InPlaceFailures int
}

// sampleBox drops the page cache and reads the box's memory: medians of
// nine reads of /proc/meminfo 250 ms apart, since other work on the machine
// moves them. The measurement's own processes are read before and after
// (their anonymous memory moves little); the others' is the box's
// AnonPages + Shmem less ours, in each read, so that MemAvailable with the
// others' memory taken out is exact per read, compilers that come and go
// included. What other work holds outside anonymous memory still moves it
// by tens of MiB, in dips of seconds: each state is read several times
// (boxReads) and its median kept.
func (b *bench) sampleBox(ctx context.Context, p *Provider, prefix string) (boxSample, error) {
	s, err := b.readBox(ctx)
	if err != nil {
		return boxSample{}, err
	}
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

// boxReads is how many samples the tiers phase takes of the box with none
// deployed (before and after) and of each deep reading.
const boxReads = 3

// sampleBoxes takes boxReads samples in a row.
func (b *bench) sampleBoxes(ctx context.Context, p *Provider, prefix string) ([]boxSample, error) {
	var out []boxSample
	for range boxReads {
		s, err := b.sampleBox(ctx, p, prefix)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// readBox is one try of sampleBox: the page cache dropped, nine reads of
// /proc/meminfo between two readings of the processes.
func (b *bench) readBox(ctx context.Context) (boxSample, error) {
	if err := exec.CommandContext(ctx, "sync").Run(); err != nil {
		return boxSample{}, fmt.Errorf("sync: %w", err)
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0); err != nil {
		return boxSample{}, fmt.Errorf("drop the page cache (needs root): %w", err)
	}
	before := splitProcs(readProcs(), os.Getenv("DOCKER_HOST"), b.providers)
	reads, err := readMeminfos(9, 250*time.Millisecond)
	if err != nil {
		return boxSample{}, err
	}
	after := splitProcs(readProcs(), os.Getenv("DOCKER_HOST"), b.providers)
	ours := procMem{Ours: (before.Ours + after.Ours) / 2, Engine: (before.Engine + after.Engine) / 2, Provider: (before.Provider + after.Provider) / 2}
	return boxFromReads(reads, ours), nil
}

// readMeminfos reads /proc/meminfo n times, every apart.
func readMeminfos(n int, every time.Duration) ([]map[string]int64, error) {
	var out []map[string]int64
	for i := 0; i < n; i++ {
		if i > 0 {
			time.Sleep(every)
		}
		m, err := readMeminfo()
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// boxFromReads keeps the median of each figure over the reads; Others is
// what taking the other processes' anonymous and shmem memory out adds to
// MemAvailable, from the median of the per-read corrected figures.
func boxFromReads(reads []map[string]int64, ours procMem) boxSample {
	med := func(f func(m map[string]int64) int64) int64 {
		var xs []int64
		for _, m := range reads {
			xs = append(xs, f(m))
		}
		return IntMedian(xs)
	}
	key := func(k string) func(map[string]int64) int64 { return func(m map[string]int64) int64 { return m[k] } }
	s := boxSample{MemAvailable: med(key("MemAvailable")), KernelStack: med(key("KernelStack")), PageTables: med(key("PageTables")),
		SUnreclaim: med(key("SUnreclaim")), Shmem: med(key("Shmem")), SReclaimable: med(key("SReclaimable")), Percpu: med(key("Percpu")), procMem: ours}
	corr := func(m map[string]int64) int64 { return m["MemAvailable"] + m["AnonPages"] + m["Shmem"] - ours.Ours }
	s.Others = med(corr) - s.MemAvailable
	var cs []int64
	for _, m := range reads {
		cs = append(cs, corr(m))
	}
	s.Jitter = spread(cs)
	return s
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
// their sandboxes kept and stopped in turn for rounds rounds, against
// readings with none deployed: one before the deploys, two right after the
// deletion, so that the last deep reading and the baseline after it are
// seconds apart. Every function wakes from deep once (at the second round,
// or after the only one), its state checked. Then the wake from each tier,
// samples times, alternated.
func (b *bench) runTiers(ctx context.Context, p *Provider, n, rounds, samples, inPlaceN int, inPlace bool) (*tiersResult, error) {
	res := &tiersResult{N: n}
	if !inPlace {
		res.InPlaceWhy = "not measured (-in-place=false)"
	}
	const prefix = "tier-mem-"
	base, err := b.sampleBoxes(ctx, p, prefix)
	if err != nil {
		return nil, err
	}
	res.Base, res.BaseBefore = base, len(base)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	if err := b.tierDeploy(ctx, p, names); err != nil {
		return nil, err
	}
	b.track(ctx)
	for r := range rounds {
		b.progress("tiers: memory round %d of %d", r+1, rounds)
		switch {
		case r == 1:
			if err := b.tierWakeAll(ctx, p, names, res); err != nil {
				return nil, err
			}
		case r > 1:
			if err := b.setSandboxes(ctx, p, prefix, true); err != nil {
				return nil, err
			}
		}
		if err := b.tierRound(ctx, p, prefix, names, res); err != nil {
			return nil, err
		}
	}
	if rounds == 1 {
		if err := b.tierWakeAll(ctx, p, names, res); err != nil {
			return nil, err
		}
	}
	b.progress("tiers: deleting %d functions", n)
	if err := parallel(len(names), 3, func(i int) error { return p.Delete(ctx, names[i]) }); err != nil {
		return nil, err
	}
	time.Sleep(3 * time.Second) // the kernel frees namespaces lazily
	if base, err = b.sampleBoxes(ctx, p, prefix); err != nil {
		return nil, err
	}
	res.Base = append(res.Base, base...)
	if inPlace {
		start := time.Now()
		if err := b.tierInPlace(ctx, p, res, inPlaceN); err != nil {
			return nil, err
		}
		b.progress("tiers: the in-place memory measurement took %s", time.Since(start).Round(time.Second))
	}
	if err := b.tierWakes(ctx, p, res, samples, inPlace); err != nil {
		return nil, err
	}
	return res, nil
}

// tierDeploy deploys the functions, calls each once and hibernates them,
// three at a time.
func (b *bench) tierDeploy(ctx context.Context, p *Provider, names []string) error {
	b.progress("tiers: deploying %d functions", len(names))
	err := parallel(len(names), 3, func(i int) error {
		// never: the policy leaves them alone while the benchmark moves
		// them between the tiers.
		return b.deployCounted(ctx, p, tierDeployment(names[i], "never", false))
	})
	if err != nil {
		return err
	}
	b.progress("tiers: hibernating %d functions", len(names))
	return b.tierHibernate(ctx, p, names)
}

func (b *bench) tierHibernate(ctx context.Context, p *Provider, names []string) error {
	return parallel(len(names), 3, func(i int) error {
		if _, err := p.Scale(ctx, names[i], 0); err != nil {
			return err
		}
		return waitAnnotation(ctx, p, names[i], "com.openfaas.criu.state", "hibernated", time.Minute)
	})
}

// tierRound reads the box with the sandboxes kept, stops them, and reads it
// again.
func (b *bench) tierRound(ctx context.Context, p *Provider, prefix string, names []string, res *tiersResult) error {
	waitTier := func(tier string) error {
		for _, name := range names {
			if err := waitAnnotation(ctx, p, name, "com.openfaas.criu.tier", tier, time.Minute); err != nil {
				return err
			}
		}
		time.Sleep(2 * time.Second) // the kernel frees namespaces lazily
		return nil
	}
	if err := waitTier("hibernated"); err != nil {
		return err
	}
	s, err := b.sampleBox(ctx, p, prefix)
	if err != nil {
		return err
	}
	res.Kept = append(res.Kept, s)
	if err := b.setSandboxes(ctx, p, prefix, false); err != nil {
		return err
	}
	if err := waitTier("deep"); err != nil {
		return err
	}
	deep, err := b.sampleBoxes(ctx, p, prefix)
	if err != nil {
		return err
	}
	res.Deep = append(res.Deep, deep...)
	return nil
}

// tierWakeAll wakes every function from deep, four at a time, checking
// that each kept its count, and hibernates them again (sandbox kept).
func (b *bench) tierWakeAll(ctx context.Context, p *Provider, names []string, res *tiersResult) error {
	b.progress("tiers: waking %d functions from deep", len(names))
	var mu sync.Mutex
	_ = parallel(len(names), 4, func(i int) error {
		body, _, err := p.Invoke(ctx, names[i], "/count")
		if err == nil && body != "2" {
			err = fmt.Errorf("%s /count after a deep sleep: %q, want 2 (state lost)", names[i], body)
		}
		if err != nil {
			mu.Lock()
			res.Failures = append(res.Failures, "tiers: "+err.Error())
			mu.Unlock()
		}
		return nil
	})
	return b.tierHibernate(ctx, p, names)
}

// parallel runs f(0..n-1), workers at a time, and returns the first error;
// after an error no further call starts.
func parallel(n, workers int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || i >= n
				mu.Unlock()
				if stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// tierWakes times the wake from each tier (tierWakeFns), alternated. An
// in-place function the provider refuses is left out (InPlaceWhy); one
// that fails is a failure of the run and is left out from then on.
func (b *bench) tierWakes(ctx context.Context, p *Provider, res *tiersResult, samples int, inPlace bool) error {
	var fns []*tierWakeFn
	for _, f := range res.tierWakeFns(inPlace) {
		err := b.deployCounted(ctx, p, tierDeployment(f.name, f.deepAfter, f.inPlace))
		if err != nil && f.inPlace {
			if res.InPlaceWhy == "" {
				res.InPlaceWhy = "not measured (" + err.Error() + ")"
			}
			_ = p.Delete(ctx, f.name)
			continue
		}
		if err != nil {
			return err
		}
		f.count = 1
		fns = append(fns, f)
	}
	start := time.Now()
	for i := range samples {
		b.progress("tiers: wake sample %d of %d", i+1, samples)
		for _, f := range fns {
			if f.broken {
				continue
			}
			err := b.tierWakeOnce(ctx, p, f)
			switch {
			case err != nil && f.inPlace:
				f.broken = true
				res.inPlaceFail(err)
			case err != nil:
				res.Failures = append(res.Failures, "tiers: "+err.Error())
			}
		}
	}
	var ip time.Duration
	for _, f := range fns {
		if f.inPlace {
			ip += f.spent
		}
	}
	b.progress("tiers: %d wakes of %d functions took %s, %s of it the in-place ones'", samples, len(fns), time.Since(start).Round(time.Second), ip.Round(100*time.Millisecond))
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

// boxEstimate is what a function costs the box, read off MemAvailable
// (which other work on the machine moves), with the noise of the readings
// it comes from, both per function.
type boxEstimate struct{ PerFn, Noise int64 }

// decide is the drift rule: the figure decides only when its noise cannot
// carry it across the limit. Met when figure + noise ≤ limit, a figure
// under zero counting as zero (a function gives the box nothing back: a
// negative figure is noise, and must not buy room for more); not met when
// figure - noise > limit; otherwise undecided (and so not met).
func (e boxEstimate) decide(limit int64) (met, decided bool) {
	switch {
	case max(e.PerFn, 0)+e.Noise <= limit:
		return true, true
	case e.PerFn-e.Noise > limit:
		return false, true
	}
	return false, false
}

func spread(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return hi - lo
}

// estimate is the box figure val (MemAvailable, or corrected) lost per
// function in the samples xs: the median of the baselines taken right
// after the deletion (seconds after the last deep samples, so that other
// work's slow drift hardly comes between) less the median of xs. Its noise,
// the drift rule's, is the larger of
//   - three standard errors of that difference of medians, the readings'
//     scatter estimated robustly (1.4826 x the median absolute deviation
//     of every sample from its group's median, both groups pooled), so
//     that a dip of one sample neither moves the figure nor hides the
//     scatter of the rest; the deep samples of every round are pooled, so
//     the drift over the minutes they span is in that scatter, and
//   - what the measurement's own side moved between the baselines before
//     the deploys and after the deletion (its processes' anonymous memory,
//     the kernel's stacks, page tables, unreclaimable slab and tmpfs):
//     memory a deploy and delete may leave behind, which the baselines
//     after would hide;
//
// both per function.
func (t *tiersResult) estimate(xs []boxSample, val func(boxSample) int64) boxEstimate {
	vals := func(ss []boxSample, f func(boxSample) int64) []int64 {
		var out []int64
		for _, s := range ss {
			out = append(out, f(s))
		}
		return out
	}
	before, after := t.Base[:t.BaseBefore], t.Base[t.BaseBefore:]
	if len(after) == 0 {
		after = t.Base
	}
	bs, ds := vals(after, val), vals(xs, val)
	if len(bs) == 0 || len(ds) == 0 {
		return boxEstimate{}
	}
	bm, dm := IntMedian(bs), IntMedian(ds)
	var dev []int64
	for _, b := range bs {
		dev = append(dev, max(b-bm, bm-b))
	}
	for _, d := range ds {
		dev = append(dev, max(d-dm, dm-d))
	}
	sigma := 1.4826 * float64(IntMedian(dev))
	se := sigma * math.Sqrt(1/float64(len(bs))+1/float64(len(ds)))
	var left int64
	if len(before) > 0 && len(before) < len(t.Base) {
		left = IntMedian(vals(after, ownSide)) - IntMedian(vals(before, ownSide))
		left = max(left, -left)
	}
	return boxEstimate{PerFn: (bm - dm) / int64(t.N), Noise: max(int64(3*se), left) / int64(t.N)}
}

// ownSide is the memory of the measurement's side of the box: its
// processes' anonymous memory and the kernel's counters that move with
// containers.
func ownSide(s boxSample) int64 {
	return s.Ours + s.kernel()
}

// othersDrift is how far the corrected MemAvailable of the baselines moved
// between before the deploys and after the deletion, per function: other
// work's slow drift, reported (the figure does not span it).
func (t *tiersResult) othersDrift() int64 {
	if t.BaseBefore == 0 || t.BaseBefore >= len(t.Base) {
		return 0
	}
	var b, a []int64
	for _, s := range t.Base[:t.BaseBefore] {
		b = append(b, s.corrected())
	}
	for _, s := range t.Base[t.BaseBefore:] {
		a = append(a, s.corrected())
	}
	return (IntMedian(a) - IntMedian(b)) / int64(t.N)
}

func memAvailable(s boxSample) int64 { return s.MemAvailable }

// boxPerFn is MemAvailable lost per function in a tier.
func (t *tiersResult) boxPerFn(xs []boxSample) int64 { return t.estimate(xs, memAvailable).PerFn }

// corrected is the figure that decides: MemAvailable lost with the other
// processes' change taken out.
func (t *tiersResult) corrected(xs []boxSample) boxEstimate {
	return t.estimate(xs, boxSample.corrected)
}

// sandboxCost is the paired difference, round by round, between the two
// tiers (each round's deep readings taken by their median): what keeping
// the sandboxes costs per function.
func (t *tiersResult) sandboxCost() int64 {
	per := max(1, len(t.Deep)/max(1, len(t.Kept)))
	var d []int64
	for i := range t.Kept {
		if (i+1)*per > len(t.Deep) {
			break
		}
		var deep []int64
		for _, s := range t.Deep[i*per : (i+1)*per] {
			deep = append(deep, s.corrected())
		}
		d = append(d, (IntMedian(deep)-t.Kept[i].corrected())/int64(t.N))
	}
	return IntMedian(d)
}

// kernPerFn is what the kernel's counters (boxSample.kernel) grew per
// function.
func (t *tiersResult) kernPerFn(xs []boxSample) int64 {
	return perFn(t.Base, xs, t.N, boxSample.kernel, false)
}

// procsPerFn is what the engine's and the providers' anonymous memory grew
// per function: per-container state no cgroup shows.
func (t *tiersResult) procsPerFn(xs []boxSample) int64 {
	return perFn(t.Base, xs, t.N, func(s boxSample) int64 { return s.Engine + s.Provider }, false)
}

// reclaimablePerFn is the reclaimable slab grown per function.
func (t *tiersResult) reclaimablePerFn(xs []boxSample) int64 {
	return perFn(t.Base, xs, t.N, func(s boxSample) int64 { return s.SReclaimable }, false)
}

// accounted is what the function's shims and cgroups, the kernel's
// counters, the engine and the provider say a tier costs per function
// (growths only: a shrinking counter is not credited).
func (t *tiersResult) accounted(xs []boxSample) int64 {
	var pss, cg []int64
	for _, s := range xs {
		pss = append(pss, s.OwnShimPSS)
		cg = append(cg, s.Cgroups)
	}
	return (IntMedian(pss)+IntMedian(cg))/int64(t.N) + max(t.kernPerFn(xs), 0) + max(t.procsPerFn(xs), 0)
}

// jitters lists the spread of each sample's corrected reads.
func (t *tiersResult) jitters() string {
	var out []string
	for _, xs := range [][]boxSample{t.Base, t.Kept, t.Deep} {
		for _, x := range xs {
			out = append(out, fmt.Sprintf("%.1f", float64(x.Jitter)/(1<<20)))
		}
	}
	return strings.Join(out, ", ") + " MiB (baselines, hibernated, deep)"
}

// memRow adds a tier's row to the section's memory table: its samples xs
// against t's baselines, per function of t.
func (t *tiersResult) memRow(mem *table, name string, xs []boxSample) {
	var shims, own, pss, cg, bshims []int64
	for _, s := range xs {
		shims = append(shims, int64(s.Shims))
		own = append(own, int64(s.OwnShims))
		pss = append(pss, s.OwnShimPSS)
		cg = append(cg, s.Cgroups)
	}
	for _, s := range t.Base {
		bshims = append(bshims, int64(s.Shims))
	}
	c, raw := t.corrected(xs), t.estimate(xs, memAvailable)
	mem.add(name, fmtMiB(c.PerFn)+" ± "+fmtMiB(c.Noise), fmtMiB(raw.PerFn)+" ± "+fmtMiB(raw.Noise), fmtBytes(IntMedian(cg)/int64(t.N)),
		fmt.Sprintf("%d (%d; %d with none deployed)", IntMedian(own), IntMedian(shims), IntMedian(bshims)),
		fmtMiB(IntMedian(pss)/int64(t.N)), fmtMiB(t.kernPerFn(xs)), fmtMiB(t.procsPerFn(xs)), fmtMiB(t.reclaimablePerFn(xs)), fmtMiB(t.accounted(xs)))
}

// wakeRow adds a tier's wakes to the section's wake table.
func wakeRow(wake *table, name string, ds []time.Duration) {
	wake.add(name, fmtDur(DurMedian(ds)), fmtDur(DurPercentile(ds, 0))+" - "+fmtDur(DurPercentile(ds, 100)), strconv.Itoa(len(ds)))
}

// Section reports the tiers.
func (t *tiersResult) Section() Section {
	mem := table{Header: []string{"tier", "box: MemAvailable lost per function, other processes' change taken out (± noise)", "as read (± noise)", "cgroups per function (old figure)", "shims of these functions (all on the box)", "shim PSS per function", "kernel stacks, page tables, unreclaimable slab, tmpfs, per-CPU per function", "engine (dockerd, containerd) and provider, anonymous, per function", "reclaimable slab per function (counted free)", "accounted: shim + cgroups + kernel + engine + provider"}}
	t.memRow(&mem, "hibernated (sandbox kept)", t.Kept)
	t.memRow(&mem, "deep (sandbox stopped)", t.Deep)
	if ip := t.InPlace; ip != nil && len(ip.Kept) > 0 {
		ip.memRow(&mem, fmt.Sprintf("hibernated in place (container and sandbox kept, under faas-criu-init; %d functions)", ip.N), ip.Kept)
	}
	bases := []string{corrList(t.Base[:t.BaseBefore]), corrList(t.Base[t.BaseBefore:])}
	rounds := []string{corrList(t.Kept), corrList(t.Deep)}
	wake := table{Header: []string{"tier", "wake, first byte (median)", "spread", "samples"}}
	wakeRow(&wake, "hibernated (sandbox kept)", t.WakeKept)
	wakeRow(&wake, "deep (sandbox stopped)", t.WakeDeep)
	if len(t.WakeInPlace)+len(t.WakeInPlaceDeep) > 0 {
		wakeRow(&wake, "hibernated in place (container and sandbox kept)", t.WakeInPlace)
		wakeRow(&wake, "deep, reached from in place (container and sandbox stopped, the dump kept)", t.WakeInPlaceDeep)
	}
	deep := t.corrected(t.Deep)
	verdict := "within 0.5 MiB whatever the noise: decided"
	if met, decided := deep.decide(limitDeepBox); !decided {
		verdict = "the noise could carry it across 0.5 MiB: undecided, so not met"
	} else if !met {
		verdict = "over 0.5 MiB beyond the noise: decided, not met"
	}
	body := fmt.Sprintf(`%d trivial functions deployed (three at a time), called once and hibernated, then moved between the two tiers %d times: sandboxes running (hibernated) and stopped with Docker (deep: the state the deep-after policy leaves, which stops them the same way). At the second round every function first woke from deep (its count checked) and was hibernated again. Before each reading: `+"`sync; echo 1 > /proc/sys/vm/drop_caches`"+`, then the median of nine reads of /proc/meminfo 250 ms apart (one sample). The baseline is the box with none of them deployed: %d samples in a row before the deploys and as many right after the deletion; each deep reading is %d samples in a row too. Other work on the machine moves MemAvailable by hundreds of MiB, so the deciding figure takes out, in each read, the anonymous and shmem memory of every process that is not the engine's dockerd or containerd, a provider, a shim of the engine or a container (the box's AnonPages + Shmem less those processes' anonymous and shmem PSS, read around the nine reads; the benchmark itself counts as other work; file pages are not taken out, MemAvailable counts them free). What other work holds elsewhere (kernel memory no counter shows) still moves it by tens of MiB in dips of seconds (spread of the nine corrected reads of each sample: %s). **Drift rule**: a tier's figure is the median of the baselines after the deletion less the median of its samples (the deep samples of both rounds pooled), per function; its noise is the larger of three standard errors of that difference (scatter: 1.4826 x the median absolute deviation of every sample from its group's median, so that one dip neither moves the figure nor hides the scatter of the rest) and what the measurement's own side (its processes' anonymous memory, the kernel's stacks, page tables, unreclaimable slab and tmpfs) moved between the baselines before the deploys and after the deletion, which the baselines after would hide; the target is met only when the figure (at least 0) + noise ≤ 0.5 MiB, not met when figure - noise > 0.5 MiB, and otherwise undecided, which counts as not met. Other work's drift between the baselines before and after, not spanned by the figure: %s per function. Deep here: %s ± %s per function, %s. Corrected MemAvailable of each sample, MiB: baselines before, after: %s; hibernated: %s; deep: %s. The paired difference, round by round, says what the sandboxes cost: **%s per function**. The shim, kernel and engine columns are counted directly; the reclaimable slab (dentries and inodes of the functions' files) is what MemAvailable counts as available, like the page cache the target drops. The cgroup column is the old way of counting: a hibernated function's own cgroup is gone, and the sandbox's holds a few KiB.

`, t.N, len(t.Kept), t.BaseBefore, boxReads, t.jitters(), fmtMiB(t.othersDrift()), fmtMiB(deep.PerFn), fmtMiB(deep.Noise), verdict, strings.Join(bases, "; "), rounds[0], rounds[1], fmtMiB(t.sandboxCost())) + mem.Markdown() +
		"\n\n" + t.inPlaceText() +
		"\n\nWake from each tier, through the provider (`GET /function/NAME/count`, time to first byte), alternated; the deep function went deep by its own `com.openfaas.criu.deep-after=1s`, so its wake starts the sandbox (one plain container start) before the restore (from in place: the sandbox, then the container, whose init waits for the restore in place):\n\n" + wake.Markdown()
	return Section{Title: "9. Sleep tiers: box memory and wake", Body: body}
}
