package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

func (r *wakeResult) fn(kind, way string) string { return "wake-" + kind + "-" + way }

// wakeRatio is p50(way) / p50(cold start) for a kind.
func (r *wakeResult) wakeRatio(kind, way string) float64 {
	return Ratio(float64(DurMedian(r.TTFB[r.fn(kind, way)])), float64(DurMedian(r.TTFB[r.fn(kind, api.StrategyRemove)])))
}

// ways lists the ways this run measured for kind: an in-place function not
// deployed is left out.
func (r *wakeResult) ways(kind string) []wakeWay {
	var out []wakeWay
	for _, w := range wakeWays {
		if !w.InPlace || r.fnOf(kind, w.Key) != nil {
			out = append(out, w)
		}
	}
	return out
}

// inPlaceNote says how the in-place rows were measured, or why they are
// missing.
func (r *wakeResult) inPlaceNote() string {
	if r.fnOf("trivial", wayInPlace) == nil && r.fnOf("heavy", wayInPlace) == nil {
		return "Hibernation in place (label `" + labelInPlace + "=true`): " + orNotMeasured(r.InPlaceWhy) + ". "
	}
	return "_restore in place_: the same fixture deployed with the label `" + labelInPlace + "=true`, so its container runs under faas-criu-init and scale to zero dumps only its processes, the container and its sandbox kept up (its status was checked to say `" + annHibernation + "=" + hibInPlace + "` after every suspend); sampled with the others, in the same rotation. "
}

// WakeSection: time to the first byte from idle, each way back.
func (r *wakeResult) WakeSection() Section {
	t := table{Header: []string{"Function", "Way back from idle", "n", "p50", "p90", "min", "p50 vs cold start", "provider's own wake p50"}}
	checks := 0
	for _, k := range wakeKinds {
		for _, w := range r.ways(k.Kind) {
			ds := r.TTFB[r.fn(k.Kind, w.Key)]
			checks += len(ds)
			own := "-"
			if pw := r.ProviderWake[r.fn(k.Kind, w.Key)]; len(pw) > 0 {
				own = fmtDur(DurMedian(pw))
			}
			t.add(k.Kind, w.Back, fmt.Sprint(len(ds)), fmtDur(DurMedian(ds)), fmtDur(DurPercentile(ds, 90)),
				fmtDur(DurPercentile(ds, 0)), fmtRatio(r.wakeRatio(k.Kind, w.Key)), own)
		}
	}
	var b strings.Builder
	b.WriteString("Time from sending `GET /function/NAME/count` to the first byte of the answer (`httptrace` GotFirstResponseByte), through the provider, for a function that was idle. ")
	fmt.Fprintf(&b, "%d functions (two kinds x the ways below) were deployed; each sample scaled every one to zero, then woke every one in turn, the order rotating from sample to sample (after one unrecorded warm-up sample)", len(r.Fns))
	if r.Settle {
		b.WriteString("; each wake starts once the previous one has finished (the provider's record of it written after Docker's start call returned, its checkpoint deleted), and 300 ms more. ")
	} else {
		b.WriteString("; each wake right after the previous one's checks, whose tail (Docker's start call returning, the record's writes, the checkpoint's deletion) may still run. ")
	}
	b.WriteString("_trivial_ is test/fixture; _heavy_ is the same with `INIT_DELAY=1.5s` and `STATE_MB=100`. ")
	b.WriteString(r.inPlaceNote())
	b.WriteString("The provider's own wake is the `com.openfaas.criu.last-wake` annotation: from the wake's start to the container running (unpause, or Docker's start from the checkpoint, or the restore in place), before the health check.\n\n")
	b.WriteString(t.Markdown())
	fmt.Fprintf(&b, "\nState was checked after every wake (%d wakes): `/count` must continue after unpause and restore and restart at 1 after a cold start, and the heavy function's `/state` checksum of its 100 MB must be unchanged. Wrong answers: %d.\n", checks, len(r.Failures))
	return Section{Title: "1. Wake latency", Body: b.String()}
}

// SuspendSection: how long scaling to zero takes.
func (r *wakeResult) SuspendSection() Section {
	t := table{Header: []string{"Function", "pause p50", "pause p90", "checkpoint p50", "checkpoint p90", "checkpoint / pause", "checkpoint in place p50", "checkpoint in place p90", "in place / checkpoint", "remove p50 (for reference)"}}
	for _, k := range wakeKinds {
		p := r.Suspend[r.fn(k.Kind, api.StrategyPause)]
		c := r.Suspend[r.fn(k.Kind, api.StrategyCheckpoint)]
		rm := r.Suspend[r.fn(k.Kind, api.StrategyRemove)]
		ip, ipP90, ipRatio := "-", "-", "-"
		if ds := r.Suspend[r.fn(k.Kind, wayInPlace)]; len(ds) > 0 {
			ip, ipP90 = fmtDur(DurMedian(ds)), fmtDur(DurPercentile(ds, 90))
			ipRatio = fmtRatio(Ratio(float64(DurMedian(ds)), float64(DurMedian(c))))
		}
		t.add(k.Kind, fmtDur(DurMedian(p)), fmtDur(DurPercentile(p, 90)), fmtDur(DurMedian(c)), fmtDur(DurPercentile(c, 90)),
			fmtRatio(Ratio(float64(DurMedian(c)), float64(DurMedian(p)))), ip, ipP90, ipRatio, fmtDur(DurMedian(rm)))
	}
	body := "Duration of `POST /system/scale-function/NAME {\"replicas\": 0}` (it answers once the function sleeps), same samples as above. " +
		"_checkpoint in place_ is the function deployed with `" + labelInPlace + "=true`: only its processes are dumped, by CRIU driven by the provider, its container kept up.\n\n" + t.Markdown()
	return Section{Title: "2. Suspend latency", Body: body}
}

// MemorySection: a function's memory cgroup in each state, and its checkpoint.
func (r *wakeResult) MemorySection() Section {
	t := table{Header: []string{"Function", "running", "paused", "hibernated", "checkpoint on disk", "checkpoint-bytes annotation", "hibernated in place (its container's cgroup: the init)", "dump in place (checkpoint-bytes annotation)"}}
	for _, k := range wakeKinds {
		m := r.Mem[k.Kind]
		hib := fmtBytes(IntMedian(m.Hibernated))
		if m.HibernatedCgroups == 0 {
			hib += " (no cgroup)"
		} else {
			hib += fmt.Sprintf(" (cgroup left in %d of %d samples)", m.HibernatedCgroups, len(m.Hibernated))
		}
		ip, ipDump := "-", "-"
		if len(m.InPlace) > 0 {
			ip, ipDump = fmtBytes(IntMedian(m.InPlace)), fmtBytes(IntMedian(m.InPlaceDump))
		}
		t.add(k.Kind, fmtBytes(IntMedian(m.Running)), fmtBytes(IntMedian(m.Paused)), hib,
			fmtBytes(IntMedian(m.CheckpointDisk)), fmtBytes(IntMedian(m.CheckpointAnnotation)), ip, ipDump)
	}
	body := "Medians over the samples. Working set of the container's memory cgroup (`memory.usage_in_bytes` minus `total_inactive_file` under `/sys/fs/cgroup/memory/docker/<id>/`), read just before the function was scaled to zero (running) and just after (paused, hibernated). " +
		"A hibernated container has exited, so it has no cgroup: it holds 0 bytes. The checkpoint is the size of `<docker root>/containers/<id>/checkpoints/*`. " +
		"A function hibernated in place keeps its container, whose cgroup then holds only faas-criu-init; its dump lies in the provider's state directory (the shims and sandboxes each tier keeps are in section 9).\n\n" + t.Markdown()
	return Section{Title: "3. Memory while idle", Body: body}
}

// ratio of functions kept with hibernation to functions kept paused.
func (d *densityResult) ratio() float64 { return Ratio(float64(d.HibOK), float64(d.PauseOK)) }

// Section: how many functions stay invocable under one budget.
func (d *densityResult) Section() Section {
	t := table{Header: []string{"", "pause only", "hibernation (--memory-budget)"}}
	t.add("functions deployed", fmt.Sprint(len(d.PausePerFn)), fmt.Sprint(d.HibDeployed))
	t.add("functions kept, each invocable with its state", fmt.Sprint(d.PauseOK), fmt.Sprint(d.HibOK))
	t.add("memory per function (working set)", fmtBytes(IntMedian(d.PausePerFn)), "same image and state")
	t.add("memory they hold", fmtBytes(d.PauseUsed)+" (sum of cgroups)", "see below")
	t.add("memory used while deploying", "-", usedSummary(d.HibUsedDeploy, d.Budget))
	t.add("memory used while calling each in turn", "-", usedSummary(d.HibUsedRounds, d.Budget))
	t.add("call from idle, p50 / p90", "unpause: see section 1",
		fmt.Sprintf("%s / %s (restore, often after hibernating another)", fmtDur(DurMedian(d.HibWake)), fmtDur(DurPercentile(d.HibWake, 90))))
	t.add("hibernated at the end (of which deep when the box was read)", "0", fmt.Sprintf("%d (%d)", d.HibAsleepEnd, d.HibDeepEnd))
	if d.PauseDeployed > 0 {
		pc, hc := boxCost(d.PauseBase, d.PauseAfter), boxCost(d.HibBase, d.HibAfter)
		n, k := int64(d.PauseDeployed), int64(max(d.HibOK, 1))
		t.add("box: MemAvailable lost, other processes' change taken out", fmt.Sprintf("%s, %s per function (%d deployed)", fmtMiB(pc.Corrected), fmtMiB(pc.Corrected/n), d.PauseDeployed),
			fmt.Sprintf("%s, %s per function kept; %s per hibernated function, the %d awake at the end counted as paused ones", fmtMiB(hc.Corrected), fmtMiB(hc.Corrected/k), fmtMiB(d.hibernatedCost()), d.HibDeployed-d.HibAsleepEnd))
		t.add("box: MemAvailable lost, as read", fmt.Sprintf("%s, %s per function", fmtMiB(pc.Raw), fmtMiB(pc.Raw/n)),
			fmt.Sprintf("%s, %s per function kept", fmtMiB(hc.Raw), fmtMiB(hc.Raw/k)))
		t.add("box: accounted (cgroups, shims' PSS, kernel stacks, page tables, slab, tmpfs, engine and providers)", fmt.Sprintf("%s, %s per function", fmtMiB(pc.Accounted), fmtMiB(pc.Accounted/n)),
			fmt.Sprintf("%s, %s per function kept; shims %d", fmtMiB(hc.Accounted), fmtMiB(hc.Accounted/k), d.HibAfter.OwnShims))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Budget %s; every function is the fixture holding `STATE_MB=%d`. ", fmtBytes(d.Budget), d.StateMB)
	b.WriteString("Pause only: functions were deployed with the pause strategy and paused one after another (on a provider without a budget, whose budget would hibernate them) until the next one's memory would exceed the budget; those that fitted were then each called again and had to answer the next `/count`. ")
	fmt.Fprintf(&b, "Hibernation: %dx as many were deployed on a provider started with `--memory-budget`, which hibernates the least recently used, with `com.openfaas.criu.deep-after=1s` (the deep tier: no sandbox kept); each was then called in turn, %d time(s), every `/count` checked. ", d.Factor, d.Rounds)
	b.WriteString("Box level (issue 13): MemAvailable after `sync; echo 1 > /proc/sys/vm/drop_caches` (median of 9 reads), with the change of the anonymous memory of every process that is not the engine, a provider or a container taken out (other work on the machine: see section 9), and accounted (the functions' cgroups, their shims' PSS, the kernel's stacks, page tables, unreclaimable slab and tmpfs, and the engine's and providers' anonymous memory against the run's start), before and after each run (pause only: every paused function deployed; hibernation: after the calls, once every hibernated function reached the deep tier), so that shims, sandboxes and kernel state count; the density at box level compares the functions the hibernation run kept with the paused functions that would fit in the box memory it used, at their measured box cost. ")
	fmt.Fprintf(&b, "The budget is full of awake functions at the end (%d of them), each costing the box what a paused one does: so the run can show at most %s (its functions against those alone), which is why it deploys %dx as many as fit paused.\n\n", d.HibDeployed-d.HibAsleepEnd, fmtRatio(d.ceiling()), d.Factor)
	b.WriteString(t.Markdown())
	raw, bm, ba := d.boxRatios()
	fmt.Fprintf(&b, "\nDensity with hibernation / pause only at box level: **%s by MemAvailable (other processes' change taken out), %s accounted**; %s by MemAvailable as read; %s counted in cgroups, the old figure. Wrong answers: %d.\n", fmtRatio(bm), fmtRatio(ba), fmtRatio(raw), fmtRatio(d.ratio()), len(d.Failures))
	return Section{Title: "4. Density", Body: b.String()}
}

// usedSummary describes samples of /system/info usedBytes against a budget.
func usedSummary(xs []int64, budget int64) string {
	return fmt.Sprintf("median %s, peak %s; over the budget in %s of %d samples (/system/info usedBytes every 100 ms)",
		fmtBytes(IntMedian(xs)), fmtBytes(maxInt(xs)), pct(overShare(xs, budget)), len(xs))
}

func maxInt(xs []int64) int64 {
	var m int64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func overShare(xs []int64, limit int64) float64 {
	if len(xs) == 0 {
		return 0
	}
	n := 0
	for _, x := range xs {
		if x > limit {
			n++
		}
	}
	return float64(n) / float64(len(xs))
}

// overheadFigures are the medians over the rounds at one connection count.
type overheadFigures struct {
	ProvRPS, RelayRPS, DirRPS    float64
	ProvP50, RelayP50, DirP50    time.Duration
	ProvP99, RelayP99, DirP99    time.Duration
	ProvErrs, RelayErrs, DirErrs int
}

func (o *overheadResult) figures(conns int) overheadFigures {
	var f overheadFigures
	med := func(runs []loadRun) (float64, time.Duration, time.Duration, int) {
		var rps []float64
		var p50, p99 []time.Duration
		errs := 0
		for _, r := range runs {
			rps = append(rps, r.RPS)
			p50 = append(p50, r.P50)
			p99 = append(p99, r.P99)
			errs += r.Errors
		}
		return Median(rps), DurMedian(p50), DurMedian(p99), errs
	}
	f.ProvRPS, f.ProvP50, f.ProvP99, f.ProvErrs = med(o.runs("provider", conns))
	f.RelayRPS, f.RelayP50, f.RelayP99, f.RelayErrs = med(o.runs("relay", conns))
	f.DirRPS, f.DirP50, f.DirP99, f.DirErrs = med(o.runs("direct", conns))
	return f
}

// Section: through the provider and through a bare relay, against the
// replica directly.
func (o *overheadResult) Section() Section {
	t := table{Header: []string{"connections", "provider req/s", "relay req/s", "direct req/s", "provider / direct", "relay / direct", "provider / relay",
		"p50 provider", "p50 relay", "p50 direct", "p99 provider", "p99 relay", "p99 direct", "p99 added (provider)", "errors"}}
	for _, c := range o.Conns {
		f := o.figures(c)
		t.add(fmt.Sprint(c), fmt.Sprintf("%.0f", f.ProvRPS), fmt.Sprintf("%.0f", f.RelayRPS), fmt.Sprintf("%.0f", f.DirRPS),
			pct(Ratio(f.ProvRPS, f.DirRPS)), pct(Ratio(f.RelayRPS, f.DirRPS)), pct(Ratio(f.ProvRPS, f.RelayRPS)),
			fmtDur(f.ProvP50), fmtDur(f.RelayP50), fmtDur(f.DirP50), fmtDur(f.ProvP99), fmtDur(f.RelayP99), fmtDur(f.DirP99),
			fmtSigned(f.ProvP99-f.DirP99), fmt.Sprintf("%d / %d / %d", f.ProvErrs, f.RelayErrs, f.DirErrs))
	}
	runs := table{Header: []string{"#", "target", "connections", "requests", "req/s", "p50", "p99", "proxy CPU per request"}}
	for i, r := range o.Runs {
		runs.add(fmt.Sprint(i+1), r.Target, fmt.Sprint(r.Conns), fmt.Sprint(r.Requests), fmt.Sprintf("%.0f", r.RPS), fmtDur(r.P50), fmtDur(r.P99), fmtCPU(r.CPUPerReq))
	}
	ct := table{Header: []string{"connections", "provider", "relay", "baseline build"}}
	for _, c := range o.Conns {
		ct.add(fmt.Sprint(c), fmtCPU(o.cpuPerReq("provider", c)), fmtCPU(o.cpuPerReq("relay", c)), fmtCPU(o.cpuPerReq("baseline", c)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "`GET /` of the trivial function (%s), awake, through the provider's `/function/NAME/`, through a bare TCP relay, and directly at its container address on the provider's bridge, with keep-alive connections from a closed-loop Go load generator in the benchmark process (every latency recorded, to the end of the body). ", o.Function)
	b.WriteString("The relay is a separate process (this benchmark's binary, `-relay-to`) that parses nothing: it copies bytes both ways with `io.Copy`, which is `splice(2)` between two TCP sockets. It is the least any proxy in front of the function must do, so its share of the direct rate bounds what a proxy can reach on this machine. ")
	fmt.Fprintf(&b, "%d rounds of %s runs at each connection count, the three contenders' order rotating each round; medians over the rounds. The provider runs with `--autoscale=false`, so one replica serves every request. The load generator, the proxy and the function share the machine's cores.\n\n", o.Rounds, o.Run)
	b.WriteString(t.Markdown())
	b.WriteString("\nThe proxies' own CPU time (user and system, `/proc/PID/stat`) per request, medians over the rounds: what a proxied request costs, steadier than the rates when other work shares the machine.\n\n")
	b.WriteString(ct.Markdown())
	if o.BaselineURL != "" {
		// Before and after, in the same run: the baseline build proxies an
		// identical function on its own network.
		bt := table{Header: []string{"connections", "this build req/s", "baseline build req/s", "this build / relay", "baseline / relay", "p99 added over direct: this build", "baseline"}}
		for _, c := range o.Conns {
			f := o.figures(c)
			var rps []float64
			var p99 []time.Duration
			for _, r := range o.runs("baseline", c) {
				rps, p99 = append(rps, r.RPS), append(p99, r.P99)
			}
			bt.add(fmt.Sprint(c), fmt.Sprintf("%.0f", f.ProvRPS), fmt.Sprintf("%.0f", Median(rps)), pct(Ratio(f.ProvRPS, f.RelayRPS)), pct(Ratio(Median(rps), f.RelayRPS)),
				fmtSigned(f.ProvP99-f.DirP99), fmtSigned(DurMedian(p99)-f.DirP99))
		}
		b.WriteString("\nThe same runs with a fourth contender, the baseline build of the provider (`-baseline-provider`), in the rotation:\n\n")
		b.WriteString(bt.Markdown())
	}
	b.WriteString("\n<details><summary>Every run</summary>\n\n")
	b.WriteString(runs.Markdown())
	b.WriteString("\n</details>\n")
	return Section{Title: "5. Invoke overhead", Body: b.String()}
}

// footprint is the provider's own cost.
type footprint struct {
	Binary       int64
	RSSStart     int64 // just started, no function
	RSSIdle      int64 // idle with the wake functions deployed
	IdleFns      int
	RSSAfterLoad int64
	LoadRSS      []int64 // sampled under load
}

// Section: the provider's resident memory and binary size.
func (f footprint) Section() Section {
	t := table{Header: []string{"", "value"}}
	t.add("binary (bin/faas-criu)", fmtBytes(f.Binary))
	t.add("resident memory, just started (no function)", fmtBytes(f.RSSStart))
	t.add(fmt.Sprintf("resident memory, idle with %d functions", f.IdleFns), fmtBytes(f.RSSIdle))
	t.add("resident memory under load (median / peak)", fmtBytes(IntMedian(f.LoadRSS))+" / "+fmtBytes(maxInt(f.LoadRSS)))
	t.add("resident memory, idle after the load", fmtBytes(f.RSSAfterLoad))
	return Section{Title: "6. Provider footprint", Body: "VmRSS of the provider process (`/proc/PID/status`).\n\n" + t.Markdown()}
}

// BreakdownSection splits the restore wake into the parts measured in this
// run: CRIU's own restore, the rest of Docker's start from the checkpoint,
// and what follows it (health check, proxying). Differences are taken
// sample by sample, then their median.
func (r *wakeResult) BreakdownSection(notes string) Section {
	t := table{Header: []string{"Function", "to first byte", "provider's wake (Docker start from checkpoint)", "of which CRIU restore (stats-restore)", "Docker, containerd, runc around CRIU", "after the start: health check, proxy"}}
	for _, k := range wakeKinds {
		var ttfb, own, after, criu, around []time.Duration
		for _, x := range r.Parts[k.Kind] {
			ttfb = append(ttfb, x.TTFB)
			own = append(own, x.Own)
			after = append(after, x.TTFB-x.Own)
			if x.HasCRIU {
				criu = append(criu, x.CRIU.Restore)
				around = append(around, x.Own-x.CRIU.Restore)
			}
		}
		t.add(k.Kind, fmtDur(DurMedian(ttfb)), fmtDur(DurMedian(own)), fmt.Sprintf("%s (n=%d)", fmtDur(DurMedian(criu)), len(criu)),
			fmtDur(DurMedian(around)), fmtDur(DurMedian(after)))
	}
	body := "Medians of this run (of per-sample differences for the last two columns). CRIU's statistics come from its shared work directory and are counted only when written during the wake.\n\n" + t.Markdown()
	if notes != "" {
		body += "\n" + notes
	}
	return Section{Title: "Where the wake time goes", Body: body}
}

func notMeasured(title, why string) Section {
	return Section{Title: title, Body: "_Not measured in this run: " + why + "._\n"}
}

func pct(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

// cpuPerReq is the median over the rounds of a proxy's CPU per request.
func (o *overheadResult) cpuPerReq(target string, conns int) time.Duration {
	var ds []time.Duration
	for _, r := range o.runs(target, conns) {
		if r.CPUPerReq > 0 {
			ds = append(ds, r.CPUPerReq)
		}
	}
	return DurMedian(ds)
}

func fmtCPU(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}
